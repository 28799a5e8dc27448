"""Files written whole: two writers of one file never clash, a failed write leaves the old file."""
import pytest

from regsuite import atomic


def test_two_interleaved_writers_of_one_file_both_succeed_and_the_last_wins(tmp_path):
    target = tmp_path / "figure.png"
    first_writer, second_writer = atomic.replacing(target), atomic.replacing(target)
    first, second = first_writer.__enter__(), second_writer.__enter__()
    assert first != second
    first.write_text("first")
    second.write_text("second")
    first_writer.__exit__(None, None, None)
    second_writer.__exit__(None, None, None)  # the old fixed name: already renamed away, FileNotFoundError
    assert target.read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = atomic.write_text(tmp_path / "board.md", "old")
    with pytest.raises(RuntimeError):
        with atomic.replacing(target, durable=True) as temporary:
            temporary.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.md"]
