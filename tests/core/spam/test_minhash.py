"""MinHash near-duplicates: shingles, sketches, and measured precision/recall on synthetic spam."""

from __future__ import annotations

import numpy as np

from streams.core.spam import MinHasher, jaccards, near_duplicates, shingles
from streams.core.spam.minhash import CHUNK_TEXTS


def sets(texts: list[str]) -> list[set[int]]:
    h, owner = shingles(texts)
    return [set(h[owner == i].tolist()) for i in range(len(texts))]


def test_shingles_ignore_case_and_punctuation_and_are_distinct() -> None:
    a, b, c = sets(["Hello, World! hello world", "hello world", "world hello"])
    assert a == b | c and len(a) == 2 and b != c


def test_shingle_hashes_are_fixed_across_processes() -> None:
    # no per-process salt: sketches in a checkpoint stay comparable after a restart
    assert shingles(["hello world"])[0].tolist() == [14432544575998248542]


def test_short_texts() -> None:
    one, same, two, none, punct = sets(["Hi!", "hi", "hi there", "", "!!! ..."])
    assert len(one) == 1 and one == same  # a one-word text is its word
    assert len(two) == 1 and not one & two  # a unigram never equals a bigram
    assert none == set() == punct
    sk = MinHasher().sketch(["hi", "hi", "", "!!!"])
    assert sk.has.tolist() == [True, True, False, False]
    assert near_duplicates(
        sk.bands[0], sk.shingles[0], sk.bands[1:], sk.shingles[1:], 0.5
    ).tolist() == [0]
    # a text without words is nobody's near-duplicate, not even another such text's
    assert (
        len(near_duplicates(sk.bands[2], sk.shingles[2], sk.bands[3:], sk.shingles[3:], 0.5)) == 0
    )


def test_non_ascii_words() -> None:
    a, b = sets(["Grüße aus Köln", "grüße aus köln"])
    assert a == b and len(a) == 2


def test_exact_jaccards() -> None:
    texts = ["a b c d e", "a b c d x", "p q r", "a b c d e"]
    sk = MinHasher().sketch(texts)
    sims = jaccards(sk.shingles[0], sk.shingles[1:])
    assert sims.tolist() == [3 / 5, 0.0, 1.0]  # {ab, bc, cd, de} vs {ab, bc, cd, dx}


def test_sketches_do_not_depend_on_chunks() -> None:
    rng = np.random.default_rng(1)
    texts = [
        " ".join(f"w{k}" for k in rng.integers(0, 50, int(rng.integers(0, 12))))
        for _ in range(CHUNK_TEXTS * 2 + 7)
    ]
    texts[5] = " ".join(f"long{k}" for k in range(20_000))  # > the cached power tables
    m = MinHasher()
    whole = m.sketch(texts)
    for i in (0, 5, CHUNK_TEXTS, len(texts) - 1):
        single = m.sketch([texts[i]])
        assert (single.bands[0] == whole.bands[i]).all()
        assert single.shingles[0].tolist() == whole.shingles[i].tolist()


def test_signatures_estimate_jaccard() -> None:
    rng = np.random.default_rng(3)
    m = MinHasher()
    errors = []
    for _ in range(200):
        base = [f"w{k}" for k in rng.integers(0, 2000, int(rng.integers(10, 40)))]
        other = list(base)
        for _ in range(int(rng.integers(0, 8))):
            other[int(rng.integers(len(other)))] = f"x{int(rng.integers(0, 2000))}"
        texts = [" ".join(base), " ".join(other)]
        h, owner = shingles(texts)
        sig = m.signatures(h, np.searchsorted(owner, [0, 1]))
        exact = jaccards(h[owner == 0], [h[owner == 1]])[0]
        errors.append(float((sig[0] == sig[1]).mean()) - exact)
    err = np.array(errors)
    assert abs(err.mean()) < 0.01 and err.std() < 0.05  # unbiased; sd ≈ √(J(1−J)/126)


def synthetic_spam(seed: int = 7) -> tuple[list[str], np.ndarray]:
    """150 templates (15–40 words) × 6 copies with 1–2 edits each (substitution, insertion or
    deletion of a word), and 3,000 unrelated texts; group −1−i for unrelated text i."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, int(rng.integers(3, 9)))) for _ in range(3000)]

    def words(n: int) -> list[str]:
        return [vocab[i] for i in rng.integers(0, len(vocab), n)]

    texts: list[str] = []
    group: list[int] = []
    for g in range(150):
        template = words(int(rng.integers(15, 41)))
        for _ in range(6):
            w = list(template)
            for _ in range(int(rng.integers(1, 3))):
                op, pos = int(rng.integers(3)), int(rng.integers(len(w)))
                if op == 0:
                    w[pos] = vocab[int(rng.integers(len(vocab)))]
                elif op == 1:
                    w.insert(pos, vocab[int(rng.integers(len(vocab)))])
                else:
                    del w[pos]
            texts.append(" ".join(w).capitalize() + "!")
            group.append(g)
    for i in range(3000):
        texts.append(" ".join(words(int(rng.integers(5, 41)))))
        group.append(-1 - i)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], np.asarray(group)[order]


def test_precision_and_recall_on_synthetic_spam() -> None:
    texts, group = synthetic_spam()
    sk = MinHasher().sketch(texts)
    tp = fp = 0
    for i in range(1, len(texts)):
        hit = near_duplicates(sk.bands[i], sk.shingles[i], sk.bands[:i], sk.shingles[:i], 0.5)
        # asking for a group of at least n: the same hits when n are candidates, else none
        n = len(hit) + i % 3
        cand = int((sk.bands[:i] == sk.bands[i]).any(axis=1).sum())
        fewer = near_duplicates(sk.bands[i], sk.shingles[i], sk.bands[:i], sk.shingles[:i], 0.5,
                                at_least=n)  # fmt: skip
        assert fewer.tolist() == (hit.tolist() if cand >= n else [])
        same = group[hit] == group[i]
        tp += int(same.sum())
        fp += int((~same).sum())
    _, sizes = np.unique(group[group >= 0], return_counts=True)
    pairs = int((sizes * (sizes - 1) // 2).sum())
    precision, recall = tp / (tp + fp), tp / pairs
    assert precision >= 0.98 and recall >= 0.97, (precision, recall)
    assert (tp, fp, pairs) == (2197, 0, 2250)  # fixed seed: precision 1.0, recall 0.976
