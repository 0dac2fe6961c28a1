"""What a batch run did, and its console summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from napari_focusqa.batch.schema import EXIT_SOME_FAILED, TRANSIENT


@dataclass
class BatchSummary:
    """What a batch run did (``format()`` gives the console summary)."""

    out: str
    files_total: int = 0
    files_skipped: int = 0
    files_done: int = 0
    files_failed: int = 0
    #: failures of the machine (memory, worker lost): ``--resume`` retries them
    files_transient: int = 0
    #: failed files already in the output that this run did not retry
    failed_kept: int = 0
    rows: int = 0
    seconds: float = 0.0
    workers: str = "serial"
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: channel key -> [out-of-focus planes, planes with a model verdict]
    out_of_focus: dict[str, list[int]] = field(default_factory=dict)

    @property
    def files_per_s(self) -> float:
        return self.files_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.files_failed else 0

    def add(self, result: dict[str, Any], zstack: bool) -> None:
        self.files_done += 1
        self.rows += len(result["rows"])
        if result["error"]:
            self.files_failed += 1
            self.files_transient += result.get("error_kind") == TRANSIENT
            self.failures.append((result["file"], result["error"]))
            return
        key_in = "in_focus_at_best" if zstack else "in_focus"
        for r in result["rows"]:
            ch = r.get("name_channel") or r.get("channel")
            key = str(ch if ch is not None else 0)
            cnt = self.out_of_focus.setdefault(key, [0, 0])
            if r.get(key_in) is not None:
                cnt[1] += 1
                cnt[0] += int(not r[key_in])

    def format(self) -> str:
        lines = [
            f"focusqa batch: {self.files_done} files assessed ({self.files_skipped} already in "
            f"the output skipped) in {self.seconds:.1f} s on {self.workers}: "
            f"{self.files_per_s:.2f} files/s, {self.rows} rows -> {self.out}",
            f"  failures: {self.files_failed}",
        ]
        for f, e in self.failures[:10]:
            lines.append(f"    {f}: {e}")
        if len(self.failures) > 10:
            lines.append(f"    … and {len(self.failures) - 10} more (see the error column)")
        if self.files_transient:
            lines.append(f"  {self.files_transient} of them transient (out of memory, worker "
                         "lost): run again with --resume to retry them")
        if self.failed_kept:
            lines.append(f"  {self.failed_kept} failed files in the output not retried "
                         "(permanent errors or out of attempts; --retry-failed re-runs them)")
        if self.out_of_focus:
            lines.append("  out of focus per channel:")
            for k in sorted(self.out_of_focus):
                n_out, n = self.out_of_focus[k]
                lines.append(f"    {k}: {n_out} / {n}" if n else f"    {k}: n/a (no model)")
        return "\n".join(lines)
