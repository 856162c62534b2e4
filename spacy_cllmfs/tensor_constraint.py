"""The span constraint as index arrays on the model's device, for the cached decoder.

It enforces the grammar of constraint.SpanConstraint, `( open span close )* eos`, with the same
choices, scores and occurrence rule, but every step is a fixed number of tensor operations for
the whole batch instead of a Python loop over rows:

- each trie (a row key's openings, a document's spans) is flattened once into arrays in
  breadth-first order: per node, where its children start in the edge arrays and how many it
  has; per edge, its token and child (`FlatTrie`, cached on the SpanIndex);
- a batch lays the tries side by side; a row's state is one node number;
- a step lists the edges of every row's node (`repeat_interleave`), reads the scores of their
  tokens only (no mask the size of the vocabulary), picks each row's best token with the end
  token always allowed (ties go to the lower token id, as `argmax` does), and follows it;
- an edge into a span's leaf is allowed while the row has used fewer occurrences of that
  string than the document holds (a per-(key, leaf) counter);
- the entities closed at each step are kept on the device and read once at the end.

The caller learns which rows ended, and how many edges the rows left have, in one small
transfer per step (`step` returns it): that is the step's only host synchronisation, and the
stopping rule needs it anyway.
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch

from .constraint import _END, _LABEL, Entity, SpanIndex, open_bias, opening_trie
from .prompts import Prompter

# node kinds
_OPENING, _OPENED, _SPAN, _CLOSED = range(4)  # opening node; opening's last; span node; leaf


@dataclass
class FlatTrie:
    """A trie as arrays, breadth-first from the root (node 0)."""

    first: torch.Tensor  # node -> index of its first edge
    count: torch.Tensor  # node -> number of edges
    token: torch.Tensor  # edge -> token id
    child: torch.Tensor  # edge -> node
    mark: List[object]  # node -> what the dict trie stores there under the leaf key, or None

    @classmethod
    def of(cls, trie: dict, leaf_key: int) -> "FlatTrie":
        nodes, first, count, token, child, mark = [trie], [], [], [], [], []
        i = 0
        while i < len(nodes):
            node = nodes[i]
            first.append(len(token))
            kids = [(t, c) for t, c in node.items() if t >= 0]
            count.append(len(kids))
            mark.append(node.get(leaf_key))
            for t, c in kids:
                token.append(t)
                child.append(len(nodes))
                nodes.append(c)
            i += 1
        as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
        return cls(as_long(first), as_long(count), as_long(token), as_long(child), mark)

    def __len__(self) -> int:
        return len(self.mark)


def flat_spans(index: SpanIndex) -> FlatTrie:
    """The span trie of `index` as arrays (computed once per index)."""
    if index.flat is None:
        index.flat = FlatTrie.of(index.trie, _END)
    return index.flat


class TensorConstraint:
    """Greedy constrained choice for the rows (document, key) of one batch; see the module doc.

    indexes, keys, prompter, answer_threshold: as for constraint.SpanConstraint. `step` picks
    and follows the next token of the rows still writing; `entities` reads what each wrote.
    """

    def __init__(self, indexes: Sequence[SpanIndex], keys: Sequence[str], prompter: Prompter,
                 answer_threshold: float = 0.5, device="cpu"):
        self.open_bias = open_bias(indexes, keys, answer_threshold)
        self.eos_id = prompter.eos_id
        self.labels: List[str] = []
        self._docs: List[SpanIndex] = []
        self._leaves: List[Tuple[int, Tuple[int, ...]]] = []  # leaf -> (document, span ids)
        # Node 0 has no edges: the state of a row whose document has no span (it can only
        # end). Then each key's opening trie, then each document's span trie.
        first, count = [torch.zeros(1, dtype=torch.long)], [torch.zeros(1, dtype=torch.long)]
        token: List[torch.Tensor] = []
        child: List[torch.Tensor] = []
        kind, mark = [_OPENING], [-1]  # mark: an opening leaf's label, a span leaf's number
        n_edges = 0

        def add(trie: FlatTrie) -> int:
            nonlocal n_edges
            root = len(kind)
            first.append(trie.first + n_edges)
            n_edges += len(trie.token)
            count.append(trie.count)
            token.append(trie.token)
            child.append(trie.child + root)
            return root

        open_root: Dict[str, int] = {}
        for key in dict.fromkeys(keys):
            trie = FlatTrie.of(opening_trie(prompter.openings(key)), _LABEL)
            open_root[key] = add(trie)
            for label in trie.mark:
                if label is None:
                    kind.append(_OPENING)
                    mark.append(-1)
                else:
                    if label not in self.labels:
                        self.labels.append(label)
                    kind.append(_OPENED)
                    mark.append(self.labels.index(label))
        span_root: Dict[int, int] = {}
        for index in indexes:
            if id(index) in span_root:
                continue
            trie = flat_spans(index)
            span_root[id(index)] = add(trie)
            for ids in trie.mark:
                if ids is None:
                    kind.append(_SPAN)
                    mark.append(-1)
                else:
                    kind.append(_CLOSED)
                    mark.append(len(self._leaves))
                    self._leaves.append((len(self._docs), ids))
            self._docs.append(index)
        on = lambda values: torch.as_tensor(values, dtype=torch.long).to(device)  # noqa: E731
        self.first, self.count = on(torch.cat(first)), on(torch.cat(count))
        self.token = on(torch.cat(token)) if token else on([])
        self.child = on(torch.cat(child)) if child else on([])
        self.kind, self.mark = on(kind), on(mark)
        self.limit = on([len(self._docs[d].occurrences[ids]) for d, ids in self._leaves] or [0])
        key_number = {key: k for k, key in enumerate(open_root)}
        self.row_key = on([key_number[key] for key in keys])
        self.row_open = on([open_root[key] if index.trie else 0
                            for index, key in zip(indexes, keys)])
        self.row_span = on([span_root[id(index)] for index in indexes])
        self.used = torch.zeros(len(open_root), max(1, len(self._leaves)), dtype=torch.long,
                                device=device)
        rows = len(keys)
        self.state = self.row_open.clone()
        self.label = torch.zeros(rows, dtype=torch.long, device=device)
        self.decision = torch.zeros(rows, dtype=torch.float64, device=device)
        self.logp_sum = torch.zeros(rows, dtype=torch.float64, device=device)
        self.logp_n = torch.zeros(rows, dtype=torch.long, device=device)
        # per step: (rows, closed?, leaf, occurrence number, log-score, label)
        self._closed: List[Tuple[torch.Tensor, ...]] = []

    def edges(self, rows: torch.Tensor) -> torch.Tensor:
        """How many edges the current node of each of `rows` has (`step`'s n_edges)."""
        return self.count[self.state[rows]]

    def step(self, rows: torch.Tensor, scores: torch.Tensor, n_edges: int):
        """Choose the next token of `rows` (one line of `scores` each) under the grammar and
        follow it. n_edges: the sum of `edges(rows)`, known to the caller from the last
        step's transfer. Returns (tokens, after): `after` holds, per row, -1 where the row
        ended its answer, else the number of edges of its new node."""
        n, vocab = scores.shape
        device = scores.device
        state = self.state[rows]
        count = self.count[state]
        row_of = torch.repeat_interleave(torch.arange(n, device=device), count,
                                         output_size=n_edges)
        start = torch.cumsum(count, 0) - count
        edge = self.first[state][row_of] + torch.arange(n_edges, device=device) - start[row_of]
        token, child = self.token[edge], self.child[edge]
        key = self.row_key[rows]
        closes = self.kind[child] == _CLOSED
        leaf = torch.where(closes, self.mark[child], 0)  # mark is a label's number elsewhere
        allowed = ~closes | (self.used[key[row_of], leaf] < self.limit[leaf])
        out = state == self.row_open[rows]  # outside an entity: open one or end
        raw = scores[row_of, token]
        biased = raw + self.open_bias if self.open_bias else raw
        candidate = torch.where(out[row_of], biased, raw)
        candidate = candidate.masked_fill(~allowed, float("-inf"))
        end = scores[:, self.eos_id]
        best = end.scatter_reduce(0, row_of, candidate, "amax", include_self=True)
        ties = torch.where(candidate == best[row_of], token, vocab)
        chosen = torch.full((n,), vocab, device=device, dtype=torch.long)
        chosen = chosen.scatter_reduce(0, row_of, ties, "amin", include_self=True)
        chosen = torch.where(end == best, torch.clamp(chosen, max=self.eos_id), chosen)
        ended = chosen == self.eos_id
        taken = (token == chosen[row_of]) & allowed
        nxt = torch.full((n,), -1, device=device, dtype=torch.long)
        nxt = nxt.scatter_reduce(0, row_of, torch.where(taken, child, -1), "amax")
        # log-probabilities under the unconstrained distribution, as SpanConstraint's
        floats = scores.float()
        norm = torch.logsumexp(floats, dim=-1)
        logp = (floats.gather(1, chosen[:, None])[:, 0] - norm).double()
        # the decision to open: the chosen opening against every opening and the end
        options = floats[row_of, token] - norm[row_of]
        end_logp = floats[:, self.eos_id] - norm
        top = end_logp.scatter_reduce(0, row_of, options, "amax", include_self=True)
        total = torch.exp(end_logp - top).scatter_add(0, row_of, torch.exp(options - top[row_of]))
        choices = (top + torch.log(total)).double()

        node = nxt.clamp(min=0)
        kind = torch.where(ended, -1, self.kind[node])
        decision = torch.where(out & ~ended, logp - choices, self.decision[rows])
        opened = kind == _OPENED
        in_span = (kind == _SPAN) | (kind == _CLOSED)
        logp_sum = torch.where(opened, 0.0, self.logp_sum[rows]) + torch.where(in_span, logp, 0.0)
        logp_n = torch.where(opened, 0, self.logp_n[rows]) + in_span.long()
        closed = kind == _CLOSED
        leaf = torch.where(closed, self.mark[node], 0)
        occurrence = self.used[key, leaf]
        self.used.index_put_((key, leaf), closed.long(), accumulate=True)
        score = decision + logp_sum / logp_n.clamp(min=1)
        self._closed.append((rows, closed, leaf, occurrence, score, self.label[rows]))
        label = torch.where(opened, self.mark[node], self.label[rows])
        new_state = torch.where(opened, self.row_span[rows],
                                torch.where(closed, self.row_open[rows], node))
        self.state[rows] = torch.where(ended, state, new_state)
        self.label[rows] = label
        self.decision[rows] = decision
        self.logp_sum[rows] = logp_sum
        self.logp_n[rows] = logp_n
        return chosen, torch.where(ended, -1, self.count[new_state])

    def entities(self) -> List[List[Entity]]:
        """Per row, the entities it wrote in the order it wrote them."""
        found: List[List[Entity]] = [[] for _ in range(len(self.state))]
        if not self._closed:
            return found
        rows, closed, leaf, occurrence, score, label = (torch.cat(part) for part in
                                                        zip(*self._closed))
        keep = closed.nonzero()[:, 0]  # steps were appended in order: a stable sort by row
        keep = keep[torch.sort(rows[keep], stable=True).indices]
        probability = score[keep].float().exp()
        for row, lf, k, p, lb in zip(*(t.tolist() for t in (
                rows[keep], leaf[keep], occurrence[keep], probability, label[keep]))):
            doc, ids = self._leaves[lf]
            start, end = self._docs[doc].occurrences[ids][k]
            found[row].append(Entity(self.labels[lb], start, end, p))
        return found
