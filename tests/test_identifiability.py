"""Which actions explain a transition (re-simulated in real MiniGrid envs), the metrics built on it, the
identifiable test split and the evaluation keys."""

from __future__ import annotations

from collections import Counter

import pytest

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.evaluation.metrics import equivalent_accuracy, identifiable_share, noop_share
from swirl.envs.experts import has_expert
from swirl.envs.identifiability import equivalent_actions, equivalent_actions_for_rows, is_identifiable, is_noop
from swirl.envs.minigrid import make_env, resimulate, state_to_text, text_to_state

EMPTY = "MiniGrid-Empty-5x5-v0"
WAV = "swirl/WAV-KeyDelivery-v0"


def state_after(env_id: str, seed: int, actions: list[int]) -> str:
    return state_to_text(resimulate(env_id, seed, actions))


@pytest.mark.parametrize("prefix, action, expected", [
    ([], 2, [2]),  # move forward into the free cell: only moving forward gets there
    ([], 0, [0]),  # each turn gives its own view
    ([], 1, [1]),
    ([], 3, [3, 4, 5, 6]),  # pick up nothing = drop nothing = toggle nothing = done: all leave s as it was
    ([0], 2, [2, 3, 4, 5, 6]),  # facing the wall: moving forward does nothing either
])
def test_known_equivalent_sets_in_the_empty_room(prefix, action, expected):
    next_state = state_after(EMPTY, 0, prefix + [action])
    assert equivalent_actions(EMPTY, 0, prefix, next_state) == expected
    assert equivalent_actions(EMPTY, 0, prefix, text_to_state(next_state)) == expected  # parsed states work too
    assert is_identifiable(expected) == (len(expected) == 1)
    assert is_noop(state_after(EMPTY, 0, prefix), next_state) == (action >= 3 or prefix == [0])


def test_no_action_reproduces_a_state_it_cannot_reach():
    far = state_after(EMPTY, 0, [2, 2])  # two cells away: no single step gets there
    assert equivalent_actions(EMPTY, 0, [], far) == []


@pytest.fixture(scope="module")
def wav_rows():
    assert has_expert(make_env(WAV))
    return build_minigrid_dataset([WAV], episodes=1, max_steps=30, policy="expert", epsilon=0.3, test_episodes=4,
                                  seed=2, balance_test=False, progress=False)["test"]


def test_batched_rows_match_one_by_one_and_contain_the_true_action(wav_rows):
    batched = equivalent_actions_for_rows(wav_rows)
    env = make_env(WAV)
    one_by_one = [equivalent_actions(row["env_id"], row["seed"], row["action_prefix"], row["next_state"], env=env)
                  for row in wav_rows]
    assert batched == one_by_one
    assert all(action in actions for action, actions in zip(wav_rows["action_id"], batched))
    # shuffled rows (the walk then restarts episodes) and a column mapping give the same answer
    shuffled = wav_rows.shuffle(seed=0)
    by_row = {(s, len(p)): a for s, p, a in zip(wav_rows["seed"], wav_rows["action_prefix"], batched)}
    columns = {name: list(shuffled[name]) for name in ("env_id", "seed", "action_prefix", "next_state")}
    assert equivalent_actions_for_rows(columns) == [by_row[(s, len(p))] for s, p in
                                                    zip(shuffled["seed"], shuffled["action_prefix"])]
    with pytest.raises(ValueError, match="lack the column"):
        equivalent_actions_for_rows(wav_rows.remove_columns("seed"))


def test_equivalent_accuracy_known_answer():
    equivalent = [[3, 4, 5, 6], [3, 4, 5, 6], [1], [2], [0], [3, 4, 5, 6], [3, 4, 5, 6]]
    predictions = ["Drop ", "toggle", "turn left", "jump", None, "switch", "done"]
    # without env ids, index 6 counts under either name
    assert equivalent_accuracy(predictions, equivalent) == pytest.approx(4 / 7)
    # a WAV task has no "done", stock MiniGrid no "switch"
    env_ids = [EMPTY] * 5 + [WAV, WAV]
    assert equivalent_accuracy(predictions, equivalent, env_ids) == pytest.approx(3 / 7)
    assert equivalent_accuracy(predictions, equivalent, [EMPTY] * 6 + [EMPTY]) == pytest.approx(3 / 7)
    with pytest.raises(ValueError, match="empty"):
        equivalent_accuracy([], [])
    with pytest.raises(ValueError, match="lengths differ"):
        equivalent_accuracy(["drop"], [[4], [4]])


def test_split_shares_known_answer():
    s, moved = state_after(EMPTY, 0, []), state_after(EMPTY, 0, [2])
    assert identifiable_share([[2], [3, 4, 5, 6], [0], [1]]) == 0.75
    assert noop_share([s, s, s], [s, moved, moved]) == pytest.approx(1 / 3)


def test_identifiable_test_split_is_identifiable_changing_and_balanced(wav_rows):
    everything = equivalent_actions_for_rows(wav_rows)
    assert identifiable_share(everything) < 1  # the plain test split does hold ambiguous rows
    data = build_minigrid_dataset([WAV], episodes=1, max_steps=30, policy="expert", epsilon=0.3, test_episodes=4,
                                  seed=2, test_split="identifiable", progress=False)
    test = data["test"]
    assert test.num_rows > 0
    equivalent = equivalent_actions_for_rows(test)
    assert equivalent == [[action] for action in test["action_id"]]
    assert noop_share(test["state"], test["next_state"]) == 0
    counts = Counter(test["action_id"])
    assert len(set(counts.values())) == 1 and len(counts) >= 3
    # the kept rows are rows of the plain test split (same episodes), and the training splits are unchanged
    plain = {(s, len(p)) for s, p in zip(wav_rows["seed"], wav_rows["action_prefix"])}
    assert {(s, len(p)) for s, p in zip(test["seed"], test["action_prefix"])} <= plain
    unbalanced = build_minigrid_dataset([WAV], episodes=1, max_steps=30, policy="expert", epsilon=0.3,
                                        test_episodes=4, seed=2, test_split="identifiable", balance_test=False,
                                        progress=False)["test"]
    kept = [i for i, actions in enumerate(everything) if len(actions) == 1
            and not is_noop(wav_rows["state"][i], wav_rows["next_state"][i])]
    assert unbalanced["next_state"] == [wav_rows["next_state"][i] for i in kept]


def test_test_split_option_in_config_and_cli():
    from swirl.builders.prepare import build_dataset
    from swirl.cli import build_parser
    from swirl.config_fields import MiniGridDataFields
    from swirl.errors import SwirlError

    args = build_parser().parse_args(["data", "minigrid", "--env", WAV, "--test-split", "identifiable"])
    assert args.test_split == "identifiable"
    assert build_parser().parse_args(["data", "minigrid", "--env", WAV]).test_split == "all"
    fields = MiniGridDataFields(env_episodes=1, env_max_steps=15, env_test_episodes=2, env_test_split="identifiable")
    test = build_dataset(fields, seed=1)["test"]
    assert identifiable_share(equivalent_actions_for_rows(test)) == 1.0
    with pytest.raises(SwirlError, match="unknown test split 'easy'; choose one of all, identifiable"):
        build_minigrid_dataset([WAV], test_split="easy", progress=False)


def test_summary_table_reports_the_identifiable_share(wav_rows):
    from datasets import DatasetDict

    from swirl.builders.minigrid_dataset import summary_table

    table = summary_table(DatasetDict({"test": wav_rows}))
    share = identifiable_share(equivalent_actions_for_rows(wav_rows))
    assert table.splitlines()[0].endswith("| identifiable |")
    assert table.splitlines()[2].endswith(f"| {share:.0%} |")


def test_evaluation_reports_equivalent_accuracy_and_shares(world_model, tokenizer, small_dataset):
    from swirl.evaluation.tables import HEADLINE
    from swirl.evaluation.world_model import evaluate_world_model
    from swirl.data import load_dataset_dict
    from swirl.sampling import HFSampler

    assert HEADLINE[HEADLINE.index("idm_accuracy") + 1] == "idm_equivalent_accuracy"
    rows = load_dataset_dict(small_dataset)["test"].select(range(8))
    sampler = HFSampler(world_model, tokenizer)
    result = evaluate_world_model(world_model, tokenizer, sampler, rows, max_state_tokens=8, max_action_tokens=4)
    equivalent = equivalent_actions_for_rows(rows)
    env_id = "swirl/WAV-KeyDelivery-v0"
    for where in (result, result["per_env"][env_id]):
        assert where["identifiable_share"] == identifiable_share(equivalent)
        assert where["noop_share"] == noop_share(rows["state"], rows["next_state"])
        assert where["idm_accuracy"] <= where["idm_equivalent_accuracy"] <= 1.0  # the true action is equivalent
    assert set(result["idm_equivalent_per_action"]) == set(rows["action"])
    # per-action FWM metrics are those of the action's rows: copying s is exact exactly on its no-op rows
    for action, metrics in result["fwm_per_action"].items():
        mine = [i for i, a in enumerate(rows["action"]) if a == action]
        assert metrics["rows"] == len(mine)
        assert metrics["fwm_copy_exact_match"] == noop_share([rows["state"][i] for i in mine],
                                                            [rows["next_state"][i] for i in mine])
        assert "identifiable_share" not in metrics
    # rows that cannot be re-simulated get no such keys (and no error)
    bare = evaluate_world_model(world_model, tokenizer, sampler, rows.remove_columns(["seed", "action_prefix"]),
                                max_action_tokens=4, roles=("idm",))
    assert "idm_accuracy" in bare
    assert not {"idm_equivalent_accuracy", "identifiable_share", "noop_share", "idm_equivalent_per_action"} & set(bare)
