"""Search settings: one place for every default."""

from __future__ import annotations

from dataclasses import dataclass

from zeb_core.engine.state import VALUE_TARGETS

TEACHERS = ("mcts", "solver", "posterior", "rollout", "schedule")  # who labels the examples: SearchConfig.teacher
LATER_TEACHERS = ("rollout", "posterior")  # who takes over from the solver in teacher "schedule"


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
    # Who labels the examples (TEACHERS): "mcts" (this search's improved policy, values from the game's result),
    # "solver" (every position solved exactly in `worlds` deals, the true one and sampled ones: pimc's per-move
    # values; the network only picks the moves played; zeb_core/selfplay/solver_teacher.py), "rollout" (the same
    # games, labelled by rollouts of the current network from each seat's own view in `worlds` deals weighted by its
    # likelihood of the other seats' plays, the solver finishing the last `solve_plays` plays: a teacher that
    # improves with the network; zeb_core/selfplay/rollout_teacher.py), "posterior" (the solver teacher's exact
    # values in `worlds` deals, the true one and draws weighted by the current network's likelihood of the other
    # seats' plays: pimc's values under the posterior the self-play policy implies, not a uniform one; the rollout
    # teacher with rollout_share 0) or "schedule" (the solver teacher, the fastest start, until the weights played
    # with were trained on `handover_games` games; `handover_teacher` after).
    teacher: str = "mcts"
    # The rollout teacher: the share of the non-forced positions labelled by rollouts (drawn per position); the
    # others, and every forced one, get the solver teacher's labels (in weighted worlds when rollout_candidates > 1,
    # as the posterior teacher's). 1 labels every choice by rollouts.
    rollout_share: float = 1.0
    # The rollout and posterior teachers: uniform candidate worlds drawn per world kept, kept in proportion to the
    # network's likelihood of the other seats' past plays (mcts.worlds.resample). 1: uniform worlds, no weighting.
    rollout_candidates: int = 4
    # teacher "schedule": the rollout teacher takes over once the weights a worker plays with were trained on this
    # many games (the learner's total_games, in the weights' state: every worker hands over at the same weights,
    # and a restart keeps it). By 15,360 games (a 20-minute solver-taught run, README at af7511d) the policy's
    # rollouts play level with pimc (50.5% of 1,000 head to head), the player whose move values the solver teacher
    # labels with: from there rollout labels are as strong, and they improve with the network. 0: rollouts at once.
    handover_games: int = 15_000
    # teacher "schedule": who takes over from the solver (LATER_TEACHERS).
    handover_teacher: str = "rollout"
    # A new leaf of a sampled world with at most this many plays left takes its exact value from the play-phase
    # solver (zeb_core.solver) instead of the network's, and is not expanded further: the endgame tablebase of
    # this search. 0 turns it off. From the fifth trick on a solve costs tens of microseconds. The rollout
    # teacher's rollouts hand over to the solver at the same point.
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
            (self.teacher in TEACHERS, f"teacher must be one of {', '.join(TEACHERS)}, got {self.teacher!r}"),
            (0 <= self.rollout_share <= 1, f"rollout_share must be in [0, 1], got {self.rollout_share}"),
            (self.rollout_candidates >= 1, f"rollout_candidates must be >= 1, got {self.rollout_candidates}"),
            (self.handover_games >= 0, f"handover_games must be >= 0, got {self.handover_games}"),
            (
                self.handover_teacher in LATER_TEACHERS,
                f"handover_teacher must be one of {', '.join(LATER_TEACHERS)}, got {self.handover_teacher!r}",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def active_teacher(self, trained_games: int) -> str:
        """The teacher that labels a batch played with weights trained on `trained_games` games: `teacher`, or
        for "schedule" the solver before `handover_games` and `handover_teacher` from there on."""
        if self.teacher != "schedule":
            return self.teacher
        return self.handover_teacher if trained_games >= self.handover_games else "solver"

    @property
    def trees_per_game(self) -> int:
        return 1 if self.clairvoyant else self.worlds

    @property
    def sims_per_tree(self) -> int:
        return max(1, -(-self.simulations // self.trees_per_game))
