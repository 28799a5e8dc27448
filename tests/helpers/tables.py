"""Reading rich tables back from command output."""
from __future__ import annotations


def rows(output: str) -> dict[str, list[str]]:
    """``{first cell: [each cell's text, its lines joined by spaces]}`` for every row of the
    box-drawn tables in ``output``: a word broken across lines comes back with a space inside."""
    found: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in output.splitlines():
        if not line.startswith("│"):
            current = None
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0]:
            current = found[cells[0]] = [[cell] for cell in cells]
        elif current is not None:
            for column, cell in zip(current, cells):
                column.append(cell)
    return {name: [" ".join(part for part in column if part) for column in columns] for name, columns in found.items()}
