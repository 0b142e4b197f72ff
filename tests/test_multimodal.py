"""One encode() for text, images, audio, video and mixed inputs, checked against sentence-transformers
where it supports the case, and against transformers directly where it does not."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import omnivec
from omnivec.errors import InputError
from omnivec.inputs.video import load_video, video_audio
from tests.fixtures import media

ATOL = 1e-5
CAPTIONS = ["a plane over a lake", "two dogs playing in the snow", "", "a red bus on a street"]


def _photos(coco_photos, n=6):
    return [Image.open(p).convert("RGB") for p in coco_photos[:n]]


@pytest.fixture(scope="module")
def tones():
    # CLAP's extractor crops clips longer than 2 s at random: keep them shorter.
    return [{"array": media.sine(s, 48000, freq=f), "sampling_rate": 48000} for s, f in ((1.0, 440), (1.5, 880), (0.4, 220))]


# -- parity with sentence-transformers ---------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["clip_dir", "siglip_dir"])
def test_dual_encoder_text_and_images_match(fixture, request, st, coco_photos):
    path = request.getfixturevalue(fixture)
    ours, peer = omnivec.Embedder(path, device="cpu"), st.SentenceTransformer(path, device="cpu")
    assert ours.modalities == ["text", "image", "video", "multimodal"] and ours.supports("image")
    photos = _photos(coco_photos)
    # SigLIP pools the last position, so its text vectors depend on batch padding: one batch each, like the peer.
    np.testing.assert_allclose(ours.encode(CAPTIONS, batch_size=8), peer.encode(CAPTIONS, batch_size=8), atol=ATOL)
    image_vectors = ours.encode(photos)
    np.testing.assert_allclose(image_vectors, peer.encode(photos), atol=ATOL)
    assert ours.get_sentence_embedding_dimension() == peer.get_embedding_dimension() == image_vectors.shape[1]


def test_image_files_match_with_full_decoding(clip_dir, st, coco_photos):
    ours, peer = omnivec.Embedder(clip_dir, device="cpu"), st.SentenceTransformer(clip_dir, device="cpu")
    paths = [str(p) for p in coco_photos[:6]]
    ours.fast_image_decode = False
    np.testing.assert_allclose(ours.encode(paths), peer.encode(paths), atol=ATOL)
    ours.fast_image_decode = True  # reduced-scale JPEG decoding: same picture, nearly the same vector
    cosine = torch.nn.functional.cosine_similarity(torch.as_tensor(ours.encode(paths)), torch.as_tensor(peer.encode(paths)))
    assert cosine.min() > 0.995, cosine


def test_clap_text_and_audio_match(clap_dir, st, tones):
    ours, peer = omnivec.Embedder(clap_dir, device="cpu"), st.SentenceTransformer(clap_dir, device="cpu")
    assert ours.modalities == ["text", "audio", "video", "multimodal"]
    np.testing.assert_allclose(ours.encode(CAPTIONS), peer.encode(CAPTIONS), atol=ATOL)
    np.testing.assert_allclose(ours.encode(tones, batch_size=2), peer.encode(tones, batch_size=2), atol=ATOL)


def test_both_clip_layouts_round_trip(clip_dir, st, tmp_path, coco_photos):
    photos = _photos(coco_photos, 3)
    legacy = tmp_path / "legacy"  # clip-ViT-B-32's layout: the HF folder in 0_CLIPModel
    shutil.copytree(clip_dir, legacy / "0_CLIPModel")
    (legacy / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "0_CLIPModel", "type": "sentence_transformers.models.CLIPModel"}]))
    ours, peer = omnivec.Embedder(legacy, device="cpu"), st.SentenceTransformer(str(legacy), device="cpu")
    assert type(ours[0]).__name__ == "CLIPModel"
    for inputs in (CAPTIONS, photos):
        np.testing.assert_allclose(ours.encode(inputs), peer.encode(inputs), atol=ATOL)
    ours.save(tmp_path / "ours-legacy")  # stays legacy, loads in both
    assert json.loads((tmp_path / "ours-legacy" / "modules.json").read_text())[0]["path"] == "0_CLIPModel"
    again = st.SentenceTransformer(str(tmp_path / "ours-legacy"), device="cpu")
    np.testing.assert_allclose(again.encode(photos), peer.encode(photos), atol=ATOL)

    peer_v54 = st.SentenceTransformer(clip_dir, device="cpu")  # v5.4+: a Transformer with a modality config
    peer_v54.save(str(tmp_path / "v54"))
    assert "modality_config" in json.loads((tmp_path / "v54" / "sentence_bert_config.json").read_text())
    ours_v54 = omnivec.Embedder(tmp_path / "v54", device="cpu")
    np.testing.assert_allclose(ours_v54.encode(photos), peer_v54.encode(photos), atol=ATOL)
    ours_v54.save(tmp_path / "ours-v54")
    back = st.SentenceTransformer(str(tmp_path / "ours-v54"), device="cpu")
    np.testing.assert_allclose(back.encode(CAPTIONS), ours_v54.encode(CAPTIONS), atol=ATOL)


# -- video, multimodal dicts, mixed batches -----------------------------------------------------------------
def test_video_is_the_mean_of_its_sampled_frames(clip_dir, tmp_path):
    model = omnivec.Embedder(clip_dir, device="cpu")
    clip = media.write_video(tmp_path / "clip.mp4", seconds=2.0, fps=10)
    model.video_sampling = omnivec.VideoSampling(num_frames=4)
    video = model.encode(str(clip), convert_to_tensor=True)
    frames = load_video(str(clip), index=0, sampling=model.video_sampling).frames
    expected = model.encode(frames, convert_to_tensor=True).mean(dim=0)
    torch.testing.assert_close(video, expected, atol=ATOL, rtol=0)
    in_memory = model.encode({"frames": [media.video_frame(i) for i in range(20)], "fps": 10}, convert_to_tensor=True)
    torch.testing.assert_close(in_memory, expected, atol=0.05, rtol=0)  # same frames, before vs after the codec


def test_video_audio_track_for_an_audio_model(clap_dir, tmp_path):
    model = omnivec.Embedder(clap_dir, device="cpu")
    clip = media.write_video(tmp_path / "clip.mkv", seconds=1.5, with_audio=True, sampling_rate=48000)
    track, rate = video_audio(str(clip), index=0)
    np.testing.assert_allclose(model.encode(str(clip)), model.encode({"array": track, "sampling_rate": rate}), atol=ATOL)


def test_multimodal_dict_is_the_normalized_mean_of_its_parts(clip_dir, coco_photos):
    model = omnivec.Embedder(clip_dir, device="cpu")
    photo = _photos(coco_photos, 1)[0]
    fused = model.encode({"text": "a plane over a lake", "image": photo}, convert_to_tensor=True)
    parts = torch.nn.functional.normalize(model.encode(["a plane over a lake", photo], convert_to_tensor=True), dim=1)
    torch.testing.assert_close(fused, torch.nn.functional.normalize(parts.mean(dim=0), dim=0), atol=ATOL, rtol=0)


@pytest.fixture(scope="module")
def clip_clap_router(clip_dir, clap_dir, st, tmp_path_factory):
    """One space for four modalities: CLIP for text, images and video frames, CLAP for audio (both 16-d)."""
    from sentence_transformers.sentence_transformer.modules import Router, Transformer

    clip, clap = Transformer(clip_dir), Transformer(clap_dir)
    router = Router({"clip": [clip], "clap": [clap]}, default_route="clip",
                    route_mappings={(None, "audio"): "clap", (None, "text"): "clip", (None, "image"): "clip"})
    out = tmp_path_factory.mktemp("router")
    st.SentenceTransformer(modules=[router], device="cpu").save(str(out))
    return str(out)


def _wrapped(tones):
    # The peer's Router reads a list of bare audio dicts as task-keyed dicts and refuses them; wrapped under
    # an "audio" key it routes them. omnivec takes both forms.
    return [{"audio": t} for t in tones]


def test_router_loads_from_sentence_transformers_and_routes_by_modality(clip_clap_router, st, coco_photos, tones):
    ours, peer = omnivec.Embedder(clip_clap_router, device="cpu"), st.SentenceTransformer(clip_clap_router, device="cpu")
    assert set(ours.modalities) == {"text", "image", "audio", "video", "multimodal"}
    photos = _photos(coco_photos, 2)
    for inputs in (CAPTIONS, photos):
        np.testing.assert_allclose(ours.encode(inputs), peer.encode(inputs), atol=ATOL)
    np.testing.assert_allclose(ours.encode(tones), peer.encode(_wrapped(tones)), atol=ATOL)
    np.testing.assert_array_equal(ours.encode(tones), ours.encode(_wrapped(tones)))


def test_router_save_round_trip(clip_clap_router, st, tmp_path, tones):
    ours = omnivec.Embedder(clip_clap_router, device="cpu")
    ours.save(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "router_config.json").read_text())
    assert set(config) == {"types", "structure", "parameters"}
    peer = st.SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    np.testing.assert_allclose(peer.encode(_wrapped(tones)), ours.encode(tones), atol=ATOL)
    np.testing.assert_allclose(peer.encode(CAPTIONS), ours.encode(CAPTIONS), atol=ATOL)


def test_mixed_batch_of_four_modalities_equals_per_modality_calls(clip_clap_router, coco_photos, tones, tmp_path):
    model = omnivec.Embedder(clip_clap_router, device="cpu")
    photo = str(coco_photos[0])
    video = str(media.write_video(tmp_path / "v.webm", seconds=1.0, fps=8))
    mixed = [tones[0], "a plane over a lake", video, photo, tones[1], "two dogs"]
    together = model.encode(mixed, batch_size=3)
    # Grouped by what each input runs through (audio tower, text tower, image tower: video frames + photo),
    # the same units form the same batches: the numbers are identical, not just close.
    np.testing.assert_array_equal(together[[0, 4]], model.encode([tones[0], tones[1]], batch_size=3))
    np.testing.assert_array_equal(together[[1, 5]], model.encode(["a plane over a lake", "two dogs"], batch_size=3))
    np.testing.assert_array_equal(together[[2, 3]], model.encode([video, photo], batch_size=3))
    alone = np.stack([model.encode(x) for x in mixed])  # other batch shapes: equal to float rounding
    np.testing.assert_allclose(together, alone, atol=1e-6)
    dict_input = model.encode([{"text": "bus", "image": photo}, "bus"])
    assert dict_input.shape == (2, 16) and not np.allclose(dict_input[0], dict_input[1])


def test_query_document_router(bert_dir, st, tmp_path):
    from sentence_transformers.sentence_transformer.modules import Pooling, Router, Transformer

    router = Router.for_query_document([Transformer(bert_dir), Pooling(32, "cls")], [Transformer(bert_dir), Pooling(32, "mean")])
    st.SentenceTransformer(modules=[router], device="cpu").save(str(tmp_path))
    ours, peer = omnivec.Embedder(tmp_path, device="cpu"), st.SentenceTransformer(str(tmp_path), device="cpu")
    np.testing.assert_allclose(ours.encode_query(CAPTIONS), peer.encode_query(CAPTIONS), atol=ATOL)
    np.testing.assert_allclose(ours.encode_document(CAPTIONS), peer.encode_document(CAPTIONS), atol=ATOL)
    assert not np.allclose(ours.encode_query(CAPTIONS), ours.encode_document(CAPTIONS))


# -- a vision-language embedder: one fused vector, checked against transformers directly -----------------------
def test_vlm_fuses_text_and_image_into_one_embedding(qwen2_vl_dir, coco_photos):
    from transformers import AutoModel, AutoProcessor

    model = omnivec.Embedder(modules=[omnivec.Transformer(qwen2_vl_dir), omnivec.Pooling(32, "lasttoken")], device="cpu")
    assert model.supports("multimodal") and model.supports("image")
    photo = _photos(coco_photos, 1)[0]
    inputs = [{"text": "What is in the picture?", "image": photo}, "a plane over a lake", photo]
    ours = model.encode(inputs)

    processor, reference = AutoProcessor.from_pretrained(qwen2_vl_dir), AutoModel.from_pretrained(qwen2_vl_dir).eval()
    conversations = [
        [{"role": "user", "content": [{"type": "image", "image": photo}, {"type": "text", "text": "What is in the picture?"}]}],
        [{"role": "user", "content": [{"type": "text", "text": "a plane over a lake"}]}],
        [{"role": "user", "content": [{"type": "image", "image": photo}]}],
    ]
    expected = []
    for conversation in conversations:
        text = processor.apply_chat_template(conversation, tokenize=False)
        images = [p["image"] for p in conversation[0]["content"] if p["type"] == "image"] or None
        features = processor(text=[text], images=images, return_tensors="pt")
        with torch.no_grad():
            expected.append(reference(**features).last_hidden_state[0, -1].numpy())
    np.testing.assert_allclose(ours, np.stack(expected), atol=ATOL)


# -- bad input ---------------------------------------------------------------------------------------------
def test_unsupported_modality_names_index_and_lists_supported(minilm_dir, clip_dir, tones):
    with pytest.raises(InputError) as info:
        omnivec.Embedder(clip_dir, device="cpu").encode(["a caption", tones[0]])
    assert "index 1" in str(info.value) and "audio" in str(info.value) and "text, image, video, multimodal" in str(info.value)
    with pytest.raises(InputError, match="index 0 is an image.*accepts: text"):
        omnivec.Embedder(minilm_dir, device="cpu").encode([Image.new("RGB", (4, 4))])


def test_corrupt_file_in_a_batch_names_file_and_reason(clip_dir, coco_photos, tmp_path):
    broken = media.corrupt_copy(coco_photos[0], tmp_path / "broken.jpg", "truncate")
    with pytest.raises(InputError) as info:
        omnivec.Embedder(clip_dir, device="cpu").encode([str(coco_photos[1]), str(broken)])
    assert "index 1" in str(info.value) and "broken.jpg" in str(info.value)
