"""AccountIndex checkpoints: the names once, the rest rebuilt."""

from __future__ import annotations

import pickle

from streams.core.batch import AccountIndex


def test_pickles_the_names_alone_and_numbers_on_after_a_restore() -> None:
    a = AccountIndex()
    a.ids_of(["x", "y", "x", "z"])
    a.names_of([0, 2])  # fills the cached name array, which is not pickled
    assert a.__getstate__() == ["x", "y", "z"]
    b = pickle.loads(pickle.dumps(a))
    assert b.ids_of(["z", "w", "x"]).tolist() == [2, 3, 0]
    assert b.names_of([3, 1]).tolist() == ["w", "y"]


def test_loads_a_checkpoint_of_all_its_slots() -> None:
    older = AccountIndex.__new__(AccountIndex)  # what the default pickling of slots gave
    older.__setstate__((None, {"ids": {"p": 0, "q": 1}, "names": ["p", "q"], "_filled": 0}))
    assert older.ids_of(["q", "r"]).tolist() == [1, 2] and older.names == ["p", "q", "r"]
