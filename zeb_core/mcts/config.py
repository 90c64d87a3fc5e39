"""Search settings: one place for every default."""

from __future__ import annotations

from dataclasses import dataclass

from zeb_core.engine.state import VALUE_TARGETS


@dataclass(frozen=True)
class SearchConfig:
    simulations: int = 50  # network-guided simulations per searched move, split across the worlds
    max_nodes: int = 128  # nodes per tree; a full tree still evaluates leaves, it just stops growing
    c_puct: float = 1.5  # exploration weight of the prior in PUCT
    worlds: int = 4  # hidden-hand deals sampled per move (determinizations); ignored when clairvoyant
    clairvoyant: bool = False  # search the true deal (what mk5-main forge/zeb does), for comparison only
    temperature: float = 1.0  # move choice from visit counts ** (1/T) in self-play
    greedy_after: int = 16  # plays after which self-play picks the most-visited move
    dirichlet_alpha: float = 0.3  # root noise in self-play
    dirichlet_fraction: float = 0.25  # share of the root prior replaced by noise (0 disables)
    # Policy target of an example: "visits" (root visit distribution, as mk5-main forge/zeb) or "improved"
    # (softmax(log prior + sigma(completed Q)), see mcts.policy_targets.improved_policy), which still improves on
    # the prior when a few simulations per world cannot separate the moves by visits.
    policy_target: str = "improved"
    c_visit: float = 50.0  # sigma(q) = (c_visit + max visits) * c_scale * q, q in [0, 1]
    c_scale: float = 0.1
    q_range_floor: float = 0.1  # smallest Q range that min-max scaling stretches to [0, 1]
    # Cache network outputs by observation within one search (all worlds of all games of one move): an information
    # state reached again (in another world or simulation, or at a full tree's unstored leaf) is not re-evaluated.
    # Results are unchanged; the cache is dropped when the search returns, so its memory is bounded by one search.
    eval_cache: bool = True
    # Clairvoyant mode only: keep each game's tree between searches and continue from the subtree of the moves
    # played since (self-play and MctsPlayer). With sampled worlds this is off whatever the setting: the next
    # search draws new deals of the hidden hands, so the old trees' states (other hands) are not the new worlds.
    reuse_tree: bool = True
    # The objective of terminal values in the search and of the examples' value targets (engine.VALUE_TARGETS):
    # "points" is the benchmark (more than 21 points wins), so it is the default.
    value_target: str = "points"
    # Who labels the examples: "mcts" (this search's improved policy, values from the game's result) or "solver"
    # (every position of the true deal solved exactly: per-move values and the position's value; the network
    # only picks the moves played). See zeb_core/solver_selfplay.py.
    teacher: str = "mcts"
    # A new leaf of a sampled world with at most this many plays left takes its exact value from the play-phase
    # solver (zeb_core.solver) instead of the network's, and is not expanded further: the endgame tablebase of
    # this search. 0 turns it off. From the fifth trick on a solve costs tens of microseconds.
    solve_plays: int = 12
    # The full game: the hidden hands of the searched (or solver-labelled) worlds are drawn in proportion to the
    # declarer's likelihood of its bid and trump (mcts.worlds.sample_search_worlds), since a real auction chose
    # them; uniform otherwise. Never in the play-phase benchmark, whose bid and trump are random.
    auction_worlds: bool = False

    def __post_init__(self) -> None:
        checks = (
            (self.simulations >= 1, f"simulations must be >= 1, got {self.simulations}"),
            (self.max_nodes >= 2, f"max_nodes must be >= 2, got {self.max_nodes}"),
            (self.c_puct > 0, f"c_puct must be > 0, got {self.c_puct}"),
            (self.worlds >= 1, f"worlds must be >= 1, got {self.worlds}"),
            (self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}"),
            (0 <= self.dirichlet_fraction <= 1, f"dirichlet_fraction must be in [0, 1], got {self.dirichlet_fraction}"),
            (
                self.policy_target in ("visits", "improved"),
                f"policy_target must be visits or improved, got {self.policy_target!r}",
            ),
            (self.c_visit >= 0 and self.c_scale >= 0, "c_visit and c_scale must be >= 0"),
            (self.q_range_floor > 0, f"q_range_floor must be > 0, got {self.q_range_floor}"),
            (self.dirichlet_alpha > 0, f"dirichlet_alpha must be > 0, got {self.dirichlet_alpha}"),
            (
                self.value_target in VALUE_TARGETS,
                f"value_target must be one of {VALUE_TARGETS}, got {self.value_target!r}",
            ),
            (0 <= self.solve_plays <= 28, f"solve_plays must be in 0..28, got {self.solve_plays}"),
            (self.teacher in ("mcts", "solver"), f"teacher must be mcts or solver, got {self.teacher!r}"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def trees_per_game(self) -> int:
        return 1 if self.clairvoyant else self.worlds

    @property
    def sims_per_tree(self) -> int:
        return max(1, -(-self.simulations // self.trees_per_game))
