"""Published leaderboards: ``leaderboard/<spec>.md`` with everything needed to reproduce it."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from regsuite import leaderboard as lb
from regsuite.store import Store


def write_markdown(store: Store, name: str, directory: Path, command: str, sort: str = "val_loss") -> Path:
    board = lb.build(store, name, sort)
    runs = [run for row in board.rows for run in row.runs]
    versions = runs[0].config["versions"]
    devices = sorted({run.device or "?" for run in runs})
    wall = sum(run.wall_time or 0 for run in runs)
    header = [
        f"# regsuite leaderboard: {name}",
        "",
        f"- generated: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- regsuite {versions['regsuite']}, torch {versions['torch']}, python {versions['python']}",
        f"- device: {', '.join(devices)}; {len(runs)} runs, {wall:.0f} s of training in all",
        f"- command: `{command}`",
        "",
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(header) + lb.to_markdown(board), encoding="utf-8")
    os.replace(tmp, path)
    return path
