"""Texts and links of simulated events.

Organic texts are random word sequences over a vocabulary of a few hundred words, so two of them
share almost no word bigrams (Jaccard ≈ 0): a near-duplicate (R3) only appears where a spammer
builds it on purpose, from one template with a single word changed per copy. Links are unique per
organic post; spam links are one canonical URL dressed up with tracking parameters and host
case, so only canonicalisation (lower-cased host, ``utm_*`` removed) shows they are one.
"""

from __future__ import annotations

import numpy as np

_WORDS = """
about above across action actually after again against almost already also always amazing
answer anyone anything around article asked back based beautiful because before behind believe
best better between beyond big book both bring build business busy call came campaign chance
change check city class clear close coffee come coming community company could course create
crowd data date deal design detail different dinner doing done down during early easy either
else energy enough even evening event ever every example experience fact family fast feel
few field figure final find fine first follow food forward found free friday friend from full
fun future game garden give glad going good great group growth guess happy hard have health
hear heard help here high hold home hope hour house idea important improve indeed inside
instead interesting issue join just keep kind know large last late later launch learn least
leave left less letter life light like line list listen little live local long look lot love
made main make many market matter maybe meeting might mind minute model moment money month
morning most move much music must near need never news next nice night nothing notice number
offer often okay open order other outside over own paper part party past people perfect
perhaps picture piece place plan play point policy post power pretty price problem project
proud public question quick quite rain rather ready real really reason recent remember report
research rest result right river road room round rule safe same save school science season
second see seem sense service share short should show side simple since small social
someone something soon sound space speak special spend sport spring start state still story
street strong study stuff summer sure system table take talk team tell test thank thanks
that their then there thing think this those though thought through ticket time today
together tomorrow tonight took topic town track travel tried true trust turn under until
update usual value very video view visit wait walk want watch water week weekend well went
what when where which while whole why wide will winter with within without wonder word work
world worth would write wrong year yesterday young your
"""
VOCABULARY: tuple[str, ...] = tuple(_WORDS.split())
_VOCAB = np.array(VOCABULARY, dtype=object)


def random_texts(
    rng: np.random.Generator,
    n: int,
    min_words: int = 6,
    max_words: int = 14,
    prefixes: list[str] | None = None,
) -> list[str]:
    """``n`` random sentences of ``min_words``–``max_words`` words (each prefixed if given)."""
    if n == 0:
        return []
    lengths = rng.integers(min_words, max_words + 1, n).tolist()
    words = _VOCAB[rng.integers(0, len(VOCABULARY), (n, max_words))].tolist()
    out = []
    for i, (row, k) in enumerate(zip(words, lengths, strict=True)):
        text = " ".join(row[:k])
        text = text[0].upper() + text[1:] + "."
        out.append(f"{prefixes[i]} {text}" if prefixes is not None else text)
    return out


def template(rng: np.random.Generator, words: int) -> list[str]:
    """A spam template: ``words`` random words (distinct bigrams, so edits are small changes)."""
    return [str(w) for w in _VOCAB[rng.choice(len(VOCABULARY), words, replace=False)]]


def near_duplicates(rng: np.random.Generator, words: list[str], n: int) -> list[str]:
    """``n`` copies of ``words`` with one word replaced each, at a random place.

    A substitution changes at most 2 of the template's bigrams, so two copies of a template of
    k words share ≥ k − 5 of their k − 1 bigrams: Jaccard ≥ (k − 5)/(k + 3), 0.68 at 22 words.
    """
    out = []
    positions = rng.integers(0, len(words), n).tolist()
    replacements = _VOCAB[rng.integers(0, len(VOCABULARY), n)].tolist()
    for pos, new in zip(positions, replacements, strict=True):
        copy = list(words)
        copy[pos] = new if new != copy[pos] else new + "s"
        out.append(" ".join(copy))
    return out


def personal_texts(rng: np.random.Generator, n: int, opening: str, picks: int = 8) -> list[str]:
    """Personalised mail-merge texts: one short shared opening, then ``picks`` random words per
    copy (a newsletter: copies share 1–2 bigrams, Jaccard ≈ 0.1, far from near-duplicate)."""
    return random_texts(rng, n, picks, picks, [opening] * n)


_HOST_CASES = ("lower", "title", "upper")
_SOURCES = ("twitter", "reply", "dm", "social", "share", "x", "feed", "partner")


def tracked_links(rng: np.random.Generator, host: str, path: str, n: int) -> list[str]:
    """``n`` spellings of ``https://<host><path>``: host case varied, random ``utm_*`` query
    (sometimes none). All canonicalise to the same lower-cased, untracked URL."""
    out = []
    cases = rng.integers(0, len(_HOST_CASES), n).tolist()
    forms = rng.integers(0, 4, n).tolist()
    sources = rng.integers(0, len(_SOURCES), n).tolist()
    tags = rng.integers(0, 100_000, n).tolist()
    for case, form, source, tag in zip(cases, forms, sources, tags, strict=True):
        how = _HOST_CASES[case]
        h = host.upper() if how == "upper" else host.title() if how == "title" else host
        src = _SOURCES[source]
        query = (
            ""
            if form == 0
            else f"?utm_source={src}"
            if form == 1
            else f"?utm_source={src}&utm_medium=social&utm_campaign=c{tag % 97}"
            if form == 2
            else f"?utm_content={tag}&utm_term={src}"
        )
        out.append(f"https://{h}{path}{query}")
    return out
