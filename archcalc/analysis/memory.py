"""The peak of live activations over the layer order: an activation lives from the layer that
makes it to its last reader; with symbolic sizes the peak is the largest of the candidate sums
that no other candidate dominates."""
from __future__ import annotations

from collections import Counter

import sympy

from ..sizes import expr, is_int, total

def peak_activations(rows, graph):
    """Largest sum of live activations over the graph's order: an activation lives from the
    layer that makes it to its last reader; outputs (layers nobody reads) live to the end.
    Live activations are kept as {size: how many}, so each step costs the number of distinct
    sizes, not of live layers (a fan of thousands of branches stays linear)."""
    index = {r.name: i for i, r in enumerate(rows)}
    last_use = [len(rows)] * len(rows)
    for r in rows:
        readers = [index[s] for s in graph.successors(r.name)]
        if readers:
            last_use[index[r.name]] = max(readers)
    frees = [[] for _ in range(len(rows) + 1)]
    for i, end in enumerate(last_use):
        frees[end].append(i)
    if all(is_int(r.activations) for r in rows):
        peak = live = 0
        for i, r in enumerate(rows):
            live += r.activations
            peak = max(peak, live)
            live -= sum(rows[j].activations for j in frees[i])
        return peak
    live, sums = Counter(), []
    for i, r in enumerate(rows):
        live[r.activations] += 1
        sums.append(total(count * size for size, count in live.items()))
        for j in frees[i]:
            live[rows[j].activations] -= 1
            if not live[rows[j].activations]:
                del live[rows[j].activations]
    return symbolic_max(sums)


def symbolic_max(sums):
    """Max of activation sums, dropping any sum that another one provably covers. Each term
    is a product of positive sizes, so b - a with only positive coefficients means b >= a;
    sympy's own Max compares every pair with assumptions and took seconds on ResNet-152."""
    unique = list(dict.fromkeys(expr(s) for s in sums))
    terms = [a.as_coefficients_dict() for a in unique]
    if not all(c.is_Number and c > 0 for d in terms for c in d.values()):
        kept = [a for a in unique if not any(b is not a and covers(b, a) for b in unique)]
        return kept[0] if len(kept) == 1 else sympy.Max(*kept, evaluate=False)
    # b covers a only if its coefficients add up to more, so a sum need only be checked
    # against the larger sums kept before it: linear for a fan of thousands of branches
    order = sorted(range(len(unique)), key=lambda i: -sum(terms[i].values()))
    front = []
    for i in order:
        if not any(dominates(terms[j], terms[i]) for j in front):
            front.append(i)
    kept = [unique[i] for i in sorted(front)]
    return kept[0] if len(kept) == 1 else sympy.Max(*kept, evaluate=False)


def dominates(b: dict, a: dict) -> bool:
    """Every coefficient of b - a is positive (terms absent from both count as equal)."""
    difference = {k: b.get(k, 0) - a.get(k, 0) for k in b.keys() | a.keys()}
    nonzero = [c for c in difference.values() if c != 0]
    return bool(nonzero) and all(c > 0 for c in nonzero)


def covers(b, a) -> bool:
    difference = b - a
    return difference != 0 and all(c > 0 for c in difference.as_coefficients_dict().values())
