"""The search's parts on their own (any evaluator, simulate/expand/backup, sentinels, seeded noise), the player
table, and the import direction: players import the search, never the other way round."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zeb_core.engine import GameState, deal_benchmark, make_generator
from zeb_core.mcts import Evaluation, Evaluator, SearchConfig, Tree, backup, expand, search, simulate
from zeb_core.mcts.noise import dirichlet_noise, gamma_sample
from zeb_core.mcts.tree import NO_CHILD, ROOT
from zeb_core.model import ModelConfig, ZebNet
from zeb_core.players import PLAYERS, SpecError, known_players, make_player
from zeb_core.players.mcts_player import MctsPlayer
from zeb_core.players.pimc import PimcPlayer


def test_importing_the_search_imports_no_player() -> None:
    code = (
        "import sys, importlib, pkgutil, zeb_core.mcts\n"
        "for m in pkgutil.walk_packages(zeb_core.mcts.__path__, 'zeb_core.mcts.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('zeb_core.players')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _state(games: int, plays: int, seed: int) -> GameState:
    gen = make_generator(seed)
    state = deal_benchmark(games, gen)
    for _ in range(plays):
        legal = state.legal_mask()
        state.apply(torch.where(legal, torch.rand(legal.shape, generator=gen), -1.0).argmax(1))
    return state


def _uniform(states: GameState) -> Evaluation:
    """A plain function as the evaluator: uniform priors over the legal slots, value 0."""
    legal = states.legal_slots()
    prior = legal.float() / legal.sum(1, keepdim=True).clamp(min=1)
    return Evaluation(prior, torch.zeros(states.batch_size), legal)


def test_search_takes_any_callable_and_its_steps_compose_into_it() -> None:
    state = _state(5, 6, seed=2)
    config = SearchConfig(simulations=12, max_nodes=10, clairvoyant=True, solve_plays=0)
    found = search(state, _uniform, config)
    assert torch.equal(found.visits.sum(1), torch.full((5,), 12.0))
    assert bool((found.visits[~found.legal] == 0).all()) and bool((found.value.abs() <= 1).all())
    # The same search by hand: roots only (0 simulations), then simulate / expand / backup twelve times.
    tree = search(state, _uniform, config, sims=0).tree
    assert tree is not None and torch.equal(tree.count, torch.ones(5, dtype=torch.int64))
    assert bool((tree.child[tree.root_rows] == NO_CHILD).all())
    for _ in range(12):
        path = simulate(tree, config.c_puct)
        assert path.nodes.shape[0] == 5 and bool((path.nodes[:, 0] == tree.root_rows).all())
        backup(tree, path, expand(tree, path, _uniform, config))
    assert torch.equal(tree.visits[tree.root_rows], found.visits)
    assert torch.equal(tree.wsum[tree.root_rows], found.wsum)
    # Full trees (10 nodes) stop growing; every stored child is a node of its own tree, after its parent.
    assert bool((tree.count == 10).all())
    rows = torch.arange(5 * 10).view(-1, 1).expand(-1, 7)
    stored = tree.child != NO_CHILD
    assert bool((tree.child[stored] // 10 == rows[stored] // 10).all())
    assert bool((tree.child[stored] > rows[stored]).all())
    assert int(ROOT) == 0 and bool((tree.root_rows == torch.arange(5) * 10).all())


def test_a_network_evaluator_caches_per_search_only() -> None:
    torch.manual_seed(7)
    evaluator = Evaluator(ZebNet(ModelConfig.preset("small")))
    state = _state(3, 4, seed=5)
    config = SearchConfig(simulations=20, max_nodes=6, clairvoyant=True)
    search(state, evaluator, config)
    first = evaluator.states_evaluated
    assert evaluator.cache_hits > 0  # full trees re-evaluate unstored leaves: from the search's cache
    search(state, evaluator, config)
    assert evaluator.states_evaluated == 2 * first  # a new search starts with an empty cache
    assert isinstance(Tree.empty(state, 4), Tree)


def test_root_noise_is_seeded_by_the_callers_generator_and_leaves_the_global_rng_alone() -> None:
    conc = torch.full((50, 7), 0.3)
    torch.manual_seed(11)
    before = torch.get_rng_state()
    a, b = make_generator(3), make_generator(3)
    draws_a = [gamma_sample(conc, a) for _ in range(3)]
    draws_b = [gamma_sample(conc, b) for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(draws_a, draws_b))
    assert not torch.equal(draws_a[0], draws_a[1])  # the generator advanced
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))  # and both advanced alike
    assert bool((draws_a[0] > 0).all())
    legal = torch.rand(50, 7, generator=make_generator(1)) < 0.6
    legal[:, 0] = True
    noise = dirichlet_noise(0.3, legal, make_generator(4))
    assert torch.allclose(noise.sum(1), torch.ones(50)) and bool((noise[~legal] == 0).all())
    config = SearchConfig(simulations=8, max_nodes=8, clairvoyant=True, solve_plays=0)
    state = _state(4, 2, seed=9)
    runs = [search(state, _uniform, config, root_noise=True, gen=make_generator(6)).visits for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


# What each kind's one-line help has said since the kinds registered themselves (`zeb players` prints these).
HELP = {
    "random": "a uniformly random legal domino",
    "heuristic": "the spec's baseline: lead trumps/high, follow cheap",
    "policy": "policy:path=DIR_OR_FILE[,temp=T] the network's move (greedy by default)",
    "mcts": (
        "mcts:path=DIR_OR_FILE[,sims=N,worlds=W,nodes=M,c=C,clairvoyant=0|1,target=T,auction=0|1] search at play time"
    ),
    "pimc": (
        "pimc:worlds=N[,seed=S,objective=win|points|contract,tiebreak=points|heuristic|first,infer=W,candidates=K,"
        "prior=W,k=K,tie=T,auction=0|1] exact solver over sampled deals (infer: weighted by a play model's likelihood "
        "of the partner's plays; prior: a network's Q head counted as K more worlds; auction: by the declarer's bid)"
    ),
    "rollout": (
        "rollout:path=DIR_OR_FILE[,worlds=W,solve_plays=P,objective=win|contract,mix=M,infer=partner|others,"
        "candidates=K,sharpen=X] the network's policy played out over sampled deals (infer: weighted by its "
        "likelihood of those seats' plays), the solver finishing the last P plays; the move with the best mean result"
    ),
    "store": "store:url=URL[,name=model,which=latest|best,temp=T,refresh=S] a store's weights, kept current",
}


def test_the_player_table_names_every_kind_with_its_help() -> None:
    assert known_players() == HELP and list(PLAYERS) == list(HELP)
    assert all(callable(factory) for factory, _ in PLAYERS.values())
    with pytest.raises(SpecError, match="known: heuristic, mcts, pimc, policy, random, rollout, store"):
        make_player("nope:x=1")
    with pytest.raises(SpecError, match="store player needs url"):
        make_player("store")
    with pytest.raises(SpecError, match="mcts player needs path"):
        make_player("mcts:sims=4")


def test_specs_build_the_same_players(small_checkpoint: Path) -> None:
    pimc = make_player("pimc:worlds=16")
    assert isinstance(pimc, PimcPlayer) and pimc.worlds == 16 and pimc.name == "pimc(worlds=16, win)"
    assert make_player("random").name == "random" and make_player(" heuristic ").name == "heuristic"
    mcts = make_player(f"mcts:path={small_checkpoint},sims=8,worlds=2,nodes=20,c=2.5,clairvoyant=1,seed=4")
    assert isinstance(mcts, MctsPlayer) and mcts.name == "mcts(step 0, 8 sims, points)"
    assert (mcts.config.simulations, mcts.config.worlds, mcts.config.max_nodes) == (8, 2, 20)
    assert mcts.config.c_puct == 2.5 and mcts.config.clairvoyant and mcts.reuse is not None
    assert make_player(f"mcts:path={small_checkpoint}").config.max_nodes == 128
    with pytest.raises(SpecError, match="does not take depth"):
        make_player(f"mcts:path={small_checkpoint},depth=2")
    with pytest.raises(SpecError, match=r"mcts: value_target must be one of .*got 'marks'"):
        make_player(f"mcts:path={small_checkpoint},target=marks")


def test_mcts_plays_for_the_objective_its_weights_were_trained_for(tmp_path: Path) -> None:
    """A full-game model (value target contract) searches for its bid unless the spec names another target."""
    from zeb_core.formats.weights import save_bundle_dir
    from zeb_core.model.checkpoint import bundle_from_model
    from zeb_core.model.config import ModelConfig
    from zeb_core.model.net import ZebNet

    config = ModelConfig.preset("small").model_copy(update={"value_target": "contract"})
    save_bundle_dir(tmp_path / "fg", bundle_from_model(ZebNet(config), {"step": 3}))
    assert make_player(f"mcts:path={tmp_path / 'fg'}").config.value_target == "contract"
    assert make_player(f"mcts:path={tmp_path / 'fg'},target=points").config.value_target == "points"
