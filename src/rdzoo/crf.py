"""A linear-chain CRF over a tagger's scores (Lample et al. 2016, section 2.2).

score(x, y) = start[y_1] + sum_t emit[t, y_t] + sum_t trans[y_t, y_t+1] + end[y_n];
training maximises log p(y | x) = score(x, y) - log Z(x), with log Z from the
forward algorithm; decoding is Viterbi. Transitions that break the tag scheme
(`I-x` after `O` or after another type in BIO; also an open entity not closed
in IOBES) get -10,000 in both, so training and decoding only weigh well-formed
sequences and a decoded sequence is always well-formed.

Written here rather than taken from pytorch-crf (0.7.2, last release 2019): it
has no way to forbid transitions (its start/transition scores are plain
parameters that training would move), and it requires the first word of every
sequence to be unmasked. The tests check the log-likelihood and the Viterbi path
against enumerating every tag sequence of short inputs.
"""

from __future__ import annotations

import torch
from torch import nn

FORBIDDEN = -1e4  # added to a forbidden transition's score; finite, so no NaN from -inf - -inf


def allowed_transitions(tags: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(K, K) may tag j follow tag i, (K,) may a sentence start with it, (K,) end with it.
    Tags that are not BIO/IOBES entity tags (POS tags, say) allow every transition."""
    from .text.conll import is_entity_tagset, scheme, valid_transition

    k = len(tags)
    if not is_entity_tagset(tags):
        return torch.ones(k, k, dtype=torch.bool), torch.ones(k, dtype=torch.bool), torch.ones(k, dtype=torch.bool)
    iobes = scheme(tags) == "iobes"
    pairs = torch.tensor([[valid_transition(a, b, iobes) for b in tags] for a in tags], dtype=torch.bool)
    start = torch.tensor([valid_transition("O", b, iobes) for b in tags], dtype=torch.bool)
    end = torch.tensor([valid_transition(a, "O", iobes) for a in tags], dtype=torch.bool)
    return pairs, start, end


class CRF(nn.Module):
    """Transition scores between K tags, plus start and end scores: K*K + 2K parameters.

    The allowed-transition masks are buffers, saved with the weights; `constrain(tags)`
    sets them from the tag names (training does, with the data's tags).
    """

    def __init__(self, num_tags: int):
        super().__init__()
        self.trans = nn.Parameter(torch.zeros(num_tags, num_tags))  # trans[i, j]: tag i then tag j
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        self.register_buffer("allowed", torch.ones(num_tags, num_tags, dtype=torch.bool))
        self.register_buffer("allowed_start", torch.ones(num_tags, dtype=torch.bool))
        self.register_buffer("allowed_end", torch.ones(num_tags, dtype=torch.bool))

    def constrain(self, tags: list[str]) -> None:
        """Set the allowed-transition buffers from the K tag names (see `allowed_transitions`);
        every transition stays allowed for tags that are not BIO/IOBES entity tags."""
        pairs, start, end = allowed_transitions(tags)
        self.allowed.copy_(pairs)
        self.allowed_start.copy_(start)
        self.allowed_end.copy_(end)

    def scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The (K, K) transition, (K,) start and (K,) end scores that decoding uses: the parameters
        plus FORBIDDEN where the allowed-transition buffers say no."""
        def masked(score, allowed):
            return score + (~allowed).to(score.dtype) * FORBIDDEN

        return (masked(self.trans, self.allowed), masked(self.start, self.allowed_start),
                masked(self.end, self.allowed_end))

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """emissions (B, T, K) scores, tags (B, T) gold ids, mask (B, T) real words (a prefix of each
        row; a row may be empty) -> (B,) log p(tags | emissions). Tags under a false mask are ignored."""
        trans, start, end = self.scores()
        emissions = emissions.float()
        tags = tags.masked_fill(~mask, 0)
        m = mask.to(emissions.dtype)
        # the gold path's score
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # (B, T)
        gold = start[tags[:, 0]] * m[:, 0] + (emit * m).sum(1)
        gold = gold + (trans[tags[:, :-1], tags[:, 1:]] * m[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        gold = gold + end[last] * m[:, 0]
        # log Z by the forward algorithm: alpha[b, j] = log sum over paths ending in tag j
        alpha = start + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t:t + 1], step, alpha)
        log_z = torch.logsumexp(alpha + end, dim=1) * m[:, 0]
        return gold - log_z

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Viterbi: emissions (B, T, K), mask (B, T) -> the best tag ids of each row's real words."""
        trans, start, end = self.scores()
        emissions = emissions.float()
        score, back = start + emissions[:, 0], []
        for t in range(1, emissions.shape[1]):
            best, index = (score.unsqueeze(2) + trans).max(dim=1)  # over the previous tag
            score = torch.where(mask[:, t:t + 1], best + emissions[:, t], score)
            back.append(index)
        lengths = mask.sum(1).tolist()
        last = (score + end).argmax(1).tolist()
        back = torch.stack(back, 1).tolist() if back else [[] for _ in lengths]  # (B, T - 1, K)
        paths = []
        for b, n in enumerate(lengths):
            path = [last[b]]
            for t in range(n - 1, 0, -1):
                path.append(back[b][t - 1][path[-1]])
            paths.append(path[::-1][:n])
        return paths
