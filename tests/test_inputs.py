"""Inputs: modality decided by type and structure; images, audio and video decoded without torchvision."""

from __future__ import annotations

import base64
import sys

import numpy as np
import pytest
from PIL import Image

from omnivec.errors import InputError
from omnivec.inputs.audio import load_audio
from omnivec.inputs.image import load_image
from omnivec.inputs.modality import tag_inputs
from omnivec.inputs.video import VideoSampling, load_video, video_audio
from tests.fixtures import images, media


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    out = {"jpg": images.write_image(root / "photo.jpg"), "png": images.write_image(root / "photo.png")}
    out["big_jpg"] = images.write_image(root / "big.jpg", size=(2000, 1500))
    out["rotated"] = images.write_image(root / "rotated.jpg", exif_orientation=6)
    for ext in media.AUDIO_EXTENSIONS:
        out[ext] = media.write_audio(root / f"tone{ext}", media.sine(1.5, 16000, channels=2), 16000)
    for ext in media.VIDEO_EXTENSIONS:
        out[ext] = media.write_video(root / f"clip{ext}", seconds=2.0, fps=10, with_audio=True)
    return out


# -- modality ------------------------------------------------------------------------------------------
def test_strings_are_text_unless_an_existing_media_file_or_media_url(files):
    tags = tag_inputs([
        "a sentence", "photo.jpg", str(files["jpg"]), "https://example.org/cat.png", "file:///tmp/x.wav",
        "data:image/png;base64,AAAA", str(files[".mp4"]), "see https://example.org/cat.png",
    ])
    assert [t.modality for t in tags] == ["text", "text", "image", "image", "audio", "image", "video", "text"]


def test_types_and_structures(files):
    pil = Image.new("RGB", (8, 8))
    tags = tag_inputs([
        pil, files["png"].read_bytes(), np.zeros((4, 4, 3), np.uint8), {"array": np.zeros(10), "sampling_rate": 8000},
        {"frames": [pil, pil], "fps": 2}, {"text": "a cat", "image": pil}, {"image": pil},
        files[".wav"].read_bytes(), files[".mkv"].read_bytes(),
    ])
    assert [t.modality for t in tags] == ["image", "image", "image", "audio", "video", ("image", "text"), "image",
                                          "audio", "video"]


def test_bare_arrays_are_never_guessed_from_rank():
    with pytest.raises(InputError, match="index 1.*ambiguous"):
        tag_inputs(["ok", np.zeros(16000, np.float32)])
    with pytest.raises(InputError, match="index 0.*ambiguous"):
        tag_inputs([np.zeros((2, 3, 4), np.float32)])


def test_forced_modality():
    assert tag_inputs(["no/such/file.jpg"], modality="image")[0].modality == "image"
    with pytest.raises(InputError, match="index 0.*cannot be read as text"):
        tag_inputs([b"\x00"], modality="text")
    with pytest.raises(ValueError, match="modality='smell'"):
        tag_inputs(["x"], modality="smell")


def test_bad_dicts_name_index_and_keys():
    with pytest.raises(InputError, match="index 2.*sampling_rate"):
        tag_inputs(["a", "b", {"array": [0.0]}])
    with pytest.raises(InputError, match="index 0.*'colour'"):
        tag_inputs([{"colour": "red"}])


# -- images ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", images.IMAGE_EXTENSIONS)
def test_every_image_format(ext, tmp_path):
    image = load_image(str(images.write_image(tmp_path / f"x{ext}")), index=0)
    assert image.mode == "RGB" and image.size == (640, 480)
    assert images.corner_colors(image) == images.UPRIGHT_CORNERS


def test_exif_orientation_is_applied(files):
    image = load_image(str(files["rotated"]), index=0)
    assert image.size == (640, 480) and images.corner_colors(image) == images.UPRIGHT_CORNERS


def test_all_image_sources_agree(files):
    data = files["png"].read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    reference = np.asarray(load_image(str(files["png"]), index=0))
    for source in (data, uri, "file://" + str(files["png"]), Image.open(files["png"]), reference):
        np.testing.assert_array_equal(np.asarray(load_image(source, index=0)), reference)


def test_draft_decoding_keeps_twice_the_model_size(files):
    full = load_image(str(files["big_jpg"]), index=0)
    drafted = load_image(str(files["big_jpg"]), index=0, min_side=224)
    assert full.size == (2000, 1500)
    assert drafted.size == (1000, 750) and min(drafted.size) >= 2 * 224
    assert images.corner_colors(drafted) == images.UPRIGHT_CORNERS
    small = load_image(str(files["jpg"]), index=0, min_side=224)  # 640x480 < 4 x 224: decoded whole
    assert small.size == (640, 480)


@pytest.mark.parametrize("mode", ["truncate", "garbage"])
def test_corrupt_image_names_file_and_reason(files, tmp_path, mode):
    broken = media.corrupt_copy(files["jpg"], tmp_path / "broken.jpg", mode)
    with pytest.raises(InputError) as info:
        load_image(str(broken), index=3)
    assert "index 3" in str(info.value) and "broken.jpg" in str(info.value) and "cannot decode" in str(info.value)


def test_bad_data_uri_and_missing_file():
    with pytest.raises(InputError, match="index 0.*base64"):
        load_image("data:image/png;base64,@@@", index=0)
    with pytest.raises(InputError, match="index 1.*does not exist"):
        load_image("/no/such/photo.jpg", index=1)


# -- audio -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", media.AUDIO_EXTENSIONS)
def test_every_audio_format_decodes_to_mono_at_the_model_rate(ext, files):
    waveform = load_audio(str(files[ext]), index=0, sampling_rate=48000)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) / 48000 - 1.5) < 0.1
    spectrum = np.abs(np.fft.rfft(waveform[:48000]))
    peaks = sorted(np.argsort(spectrum)[-2:])  # the mix-down keeps both channels: 440 Hz and 880 Hz
    assert abs(peaks[0] - 440) <= 2 and abs(peaks[1] - 880) <= 2


def test_audio_dict_is_mixed_down_and_resampled():
    stereo = media.sine(1.0, 16000, channels=2)
    out = load_audio({"array": stereo, "sampling_rate": 16000}, index=0, sampling_rate=8000)
    assert out.shape == (8000,)
    same = load_audio({"array": stereo[:, 0], "sampling_rate": 8000}, index=0, sampling_rate=8000)
    np.testing.assert_array_equal(same, stereo[:, 0])


@pytest.mark.parametrize("ext", [".wav", ".flac", ".m4a", ".ogg"])
def test_corrupt_audio_names_file(ext, files, tmp_path):
    broken = media.corrupt_copy(files[ext], tmp_path / f"broken{ext}", "garbage")
    with pytest.raises(InputError) as info:
        load_audio(str(broken), index=5, sampling_rate=16000)
    assert "index 5" in str(info.value) and f"broken{ext}" in str(info.value)


# -- video -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", media.VIDEO_EXTENSIONS)
def test_every_video_container_samples_uniform_frames(ext, files):
    video = load_video(str(files[ext]), index=0, sampling=VideoSampling(num_frames=4))
    assert len(video.frames) == 4 and abs(video.duration - 2.0) < 0.15
    indices = [media.frame_index_from_pixels(np.asarray(f)) for f in video.frames]
    assert indices == [2, 7, 12, 17]  # centres of four equal spans of 20 frames


def test_sampling_by_rate(files):
    video = load_video(str(files[".mp4"]), index=0, sampling=VideoSampling(fps=2))
    assert [media.frame_index_from_pixels(np.asarray(f)) for f in video.frames] == [2, 7, 12, 17]


def test_frames_in_memory():
    frames = [media.video_frame(i) for i in range(30)]
    video = load_video({"frames": frames, "fps": 10}, index=0, sampling=VideoSampling(num_frames=3))
    assert [media.frame_index_from_pixels(np.asarray(f)) for f in video.frames] == [5, 15, 25]


def test_video_audio_track(files):
    waveform, rate = video_audio(str(files[".mp4"]), index=0)
    assert rate == 16000 and abs(len(waveform) / rate - 2.0) < 0.1


def test_corrupt_video_names_file(files, tmp_path):
    broken = media.corrupt_copy(files[".mp4"], tmp_path / "broken.mp4", "truncate")
    with pytest.raises(InputError) as info:
        load_video(str(broken), index=2, sampling=VideoSampling())
    assert "index 2" in str(info.value) and "broken.mp4" in str(info.value)


# -- missing decoders --------------------------------------------------------------------------------------
def test_missing_decoders_name_the_pip_extra(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(InputError, match=r"omnivec\[audio\]"):
        load_audio(str(files[".m4a"]), index=0, sampling_rate=16000)
    with pytest.raises(InputError, match=r"omnivec\[video\]"):
        load_video(str(files[".mp4"]), index=0, sampling=VideoSampling())
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(InputError, match=r"omnivec\[image\]"):
        load_image(str(files["jpg"]), index=0)
