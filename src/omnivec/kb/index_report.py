"""What an index run did: files indexed, unchanged, removed, failed and skipped, chunks per space, time per stage,
and whatever it had to repair or could not check. ``summary()`` is what ``omnivec index`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field

from omnivec.printing import printable


@dataclass
class IndexReport:
    scanned: int = 0
    unchanged: int = 0
    indexed: int = 0
    extended: int = 0  # of the indexed: unchanged files written only into spaces they lacked
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not read: symlinks, FIFOs, devices, sockets
    chunks: dict[str, int] = field(default_factory=dict)  # space -> chunks written
    problems: list[str] = field(default_factory=list)  # spaces left out of this run
    repairs: list[str] = field(default_factory=list)  # where the manifest and the store had drifted apart
    notes: list[str] = field(default_factory=list)  # checks that could not be made (a model's files unreadable)
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> time spent

    def summary(self) -> str:
        extended = f" ({self.extended} only into new spaces)" if self.extended else ""
        lines = [f"{self.scanned} files: {self.indexed} indexed{extended}, {self.unchanged} unchanged, {self.removed} removed, "
                 f"{len(self.failed)} failed, {len(self.skipped)} skipped"]
        for space, count in sorted(self.chunks.items()):
            lines.append(f"  {space}: {count} chunks written")
        for stage, spent in self.seconds.items():
            lines.append(f"  {stage}: {spent:.1f} s")
        lines.extend(f"  skipped space: {problem}" for problem in self.problems)
        lines.extend(f"  repaired: {repair}" for repair in self.repairs)
        lines.extend(f"  note: {note}" for note in self.notes)
        # A file name (and a reason quoting it) may hold control characters: escaped, so each entry stays one line
        # and no escape sequence reaches the terminal.
        for title, entries in (("Files not indexed:", self.failed), ("Skipped (not read):", self.skipped)):
            if entries:
                lines.append(title)
                lines.extend(f"  {printable(path)}: {printable(reason)}" for path, reason in entries)
        return "\n".join(lines)


def short_reason(exc: BaseException) -> str:
    """An exception in one line of at most 300 characters, for a summary line."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
