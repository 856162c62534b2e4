"""N-way K-shot training sets, drawn with Few-NERD's greedy sampler (Ding et al., 2021).

Few-NERD's rule: pick N types; walk the sentences in random order and take a sentence when
(a) all its entity types are among the N, (b) it brings at least one type still below K
mentions, and (c) no type goes above 2K. Stop when every type has at least K mentions, so
each type ends with K to 2K mentions. Few-NERD draws sentences forever until it finishes;
here a walk visits each candidate once, and a walk that ends short of K for some type is
followed by another walk in a new order from the same random stream, up to WALKS walks, so
an impossible request fails with an error instead of hanging. The first walk is the whole
draw whenever it succeeds; which walk succeeded is returned (Episode.walk) so that results
can record it (GUM K = 10, seed 2 needs a second walk).
"""
import random
from collections import Counter
from typing import List, NamedTuple, Sequence

from spacy.tokens import Doc

from .errors import SamplingError


WALKS = 100  # walks over the candidates before the sampler gives up


class Episode(NamedTuple):
    types: List[str]  # the N types, sorted
    indices: List[int]  # the chosen docs, sorted
    walk: int  # which walk over the candidates reached K (1: the first)


def sample_episode(
    docs: Sequence[Doc], n_ways: int, k_shots: int, seed: int, walks: int = WALKS
) -> Episode:
    """Choose N types and the indices (sorted) of docs that hold K to 2K mentions of each."""
    if n_ways < 1 or k_shots < 1 or walks < 1:
        raise SamplingError(f"N, K and the walks must be at least 1, got N={n_ways}, "
                            f"K={k_shots}, walks={walks}.")
    counts = [Counter(ent.label_ for ent in doc.ents) for doc in docs]
    all_types = sorted(set().union(*counts)) if counts else []
    if n_ways > len(all_types):
        raise SamplingError(
            f"Asked for {n_ways} types (N), but the data has {len(all_types)} entity "
            f"types: {all_types}. Lower N."
        )
    rng = random.Random(seed)
    types = sorted(rng.sample(all_types, n_ways))
    target = set(types)
    candidates = [i for i, c in enumerate(counts) if c and set(c) <= target]
    available = Counter()
    for i in candidates:
        available.update(counts[i])
    short = {t: available[t] for t in types if available[t] < k_shots}
    if short:
        detail = ", ".join(f"{t}: {n}" for t, n in sorted(short.items()))
        raise SamplingError(
            f"Too few examples for K={k_shots}: counting only sentences whose types are all "
            f"among {types}, these types have fewer than K mentions ({detail}). Lower K, "
            f"or add data."
        )
    for walk in range(1, walks + 1):
        rng.shuffle(candidates)
        have: Counter = Counter()
        chosen: List[int] = []
        for i in candidates:
            if _fits(counts[i], have, k_shots):
                have.update(counts[i])
                chosen.append(i)
                if all(have[t] >= k_shots for t in types):
                    return Episode(types, sorted(chosen), walk)
    detail = ", ".join(f"{t}: {have[t]}" for t in types)
    raise SamplingError(
        f"The greedy sampler could not reach K={k_shots} for every type without exceeding "
        f"2K for another in {walks} walks (the last got {detail}) with seed {seed}. Try "
        f"another seed or a smaller K."
    )


def _fits(sentence: Counter, have: Counter, k_shots: int) -> bool:
    if any(have[t] + n > 2 * k_shots for t, n in sentence.items()):
        return False
    return any(have[t] < k_shots for t in sentence)
