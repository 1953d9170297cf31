"""Evaluation metrics on hand-made cases with known answers."""

from __future__ import annotations

import math

import pytest

from swirl.evaluation.metrics import OTHER, compare_prediction, fwm_metrics, idm_metrics
from swirl.envs.minigrid import ACTION_TEXTS, make_env, state_to_text

# MiniGrid-Empty-5x5, seed 0: the agent at (1, 1) facing right; "move forward" takes it to (2, 1).
S = "grid 5x5\nW W W W W\nW > . . W\nW . . . W\nW . . G W\nW W W W W\ncarrying none\nend"
S_NEXT = "grid 5x5\nW W W W W\nW . > . W\nW . . . W\nW . . G W\nW W W W W\ncarrying none\nend"
FIELDS = 5 * 5 + 3  # cells + agent position + direction + carried object


def test_the_hand_made_states_are_real():
    env = make_env("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    assert state_to_text(env) == S
    env.step(2)
    assert state_to_text(env) == S_NEXT


def test_identical_prediction_is_perfect():
    assert compare_prediction(S, S_NEXT, S_NEXT) == {"exact": 1, "parsed": 1, "fields_right": FIELDS, "fields": FIELDS,
                                                     "changed_right": 1, "changed": 1}


def test_copying_the_input_scores_zero_on_changed_fields():
    assert compare_prediction(S, S, S_NEXT) == {"exact": 0, "parsed": 1, "fields_right": FIELDS - 1, "fields": FIELDS,
                                                "changed_right": 0, "changed": 1}


def test_one_wrong_cell():
    wrong = S_NEXT.replace("W . . G W", "W . . . W")  # the goal is missing
    assert compare_prediction(S, wrong, S_NEXT) == {"exact": 0, "parsed": 1, "fields_right": FIELDS - 1,
                                                    "fields": FIELDS, "changed_right": 1, "changed": 1}


@pytest.mark.parametrize("bad", ["the agent moves right", S_NEXT[:-3], S_NEXT.replace("grid 5x5", "grid 4x4")])
def test_unparseable_or_wrong_size_prediction_gets_nothing_right(bad):
    counts = compare_prediction(S, bad, S_NEXT)
    assert counts["exact"] == 0 and counts["fields_right"] == 0 and counts["changed_right"] == 0


def test_aggregate_fwm_metrics():
    metrics = fwm_metrics([S, S, S, S], [S_NEXT, S, "garbage", S_NEXT], [S_NEXT] * 4)
    assert metrics["exact_match"] == 0.5 and metrics["parse_rate"] == 0.75
    assert metrics["field_accuracy"] == pytest.approx((3 * FIELDS - 1) / (4 * FIELDS))
    assert metrics["changed_accuracy"] == 0.5 and metrics["changed_fields"] == 4
    assert metrics["copy_field_accuracy"] == pytest.approx((FIELDS - 1) / FIELDS) and metrics["copy_exact_match"] == 0
    assert 0 < metrics["bleu"] < 1 and 0 < metrics["rouge_l"] < 1


def test_text_scores_of_identical_states_are_one():
    metrics = fwm_metrics([S], [S_NEXT], [S_NEXT])
    assert metrics["bleu"] == pytest.approx(1.0) and metrics["rouge_l"] == pytest.approx(1.0)


def test_no_changed_fields_gives_nan_not_a_fake_number():
    assert math.isnan(fwm_metrics([S], [S], [S])["changed_accuracy"])


def test_empty_inputs_are_a_clear_error():
    with pytest.raises(ValueError, match="cannot evaluate an empty set"):
        fwm_metrics([], [], [])
    with pytest.raises(ValueError, match="cannot evaluate an empty set"):
        idm_metrics([], [], ACTION_TEXTS)
    with pytest.raises(ValueError, match="lengths differ"):
        fwm_metrics([S], [S, S], [S])


def test_idm_accuracy_per_action_and_confusion():
    metrics = idm_metrics(["turn left", "toggle", "jump", "drop"], ["turn left", "drop", "drop", "drop"], ACTION_TEXTS)
    assert metrics["accuracy"] == 0.5
    assert metrics["per_action"] == {"turn left": 1.0, "drop": pytest.approx(1 / 3)}
    assert metrics["confusion"]["drop"] == {**{a: 0 for a in ACTION_TEXTS}, "toggle": 1, "drop": 1, OTHER: 1}
    assert sum(sum(row.values()) for row in metrics["confusion"].values()) == 4


def test_end_to_end_evaluation_of_tiny_adapters(world_model, tokenizer, small_dataset, tmp_path):
    import json
    import subprocess
    import sys

    from swirl.evaluation.world_model import evaluate_world_model
    from swirl.data import load_dataset_dict
    from swirl.models.adapters import save_adapter
    from swirl.sampling import HFSampler

    rows = load_dataset_dict(small_dataset)["test"].select(range(6))
    result = evaluate_world_model(world_model, tokenizer, HFSampler(world_model, tokenizer), rows, max_state_tokens=24,
                                  max_action_tokens=4)
    assert result["rows"] == 6 and result["fwm_nll"] > 0
    for key in ("fwm_exact_match", "fwm_parse_rate", "fwm_field_accuracy", "fwm_copy_field_accuracy", "fwm_bleu",
                "fwm_rouge_l", "idm_accuracy"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["fwm_parse_rate"] == 0.0  # 24 random tokens are never a state
    assert result["fwm_copy_field_accuracy"] > 0.8  # most of the grid does not change in one step
    assert set(result["per_env"]) == {"swirl/WAV-KeyDelivery-v0"}
    assert sum(entry["rows"] for entry in result["fwm_per_action"].values()) == 6
    assert set(result["fwm_per_action"]) == set(rows["action"])
    assert sum(sum(row.values()) for row in result["idm_confusion"].values()) == 6
    # the command-line entry point writes the JSON and the table
    for role in ("fwm", "idm"):
        save_adapter(world_model, role, tmp_path / "stage" / role)
    command = [sys.executable, "-m", "eval.world_model", "--model", "tiny-qwen2", "--adapters", str(tmp_path / "stage"),
               "--dataset", str(small_dataset), "--rows", "4", "--max-state-tokens", "16", "--sampler", "hf",
               "--rollout-horizon", "2", "--rollout-starts", "2", "--afs-states", "1", "--out", str(tmp_path / "eval")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    written = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert written["rows"] == 4 and [step["horizon"] for step in written["rollouts"]] == [1, 2]
    assert written["action_following"]["states"] == 1
    assert "| overall |" in (tmp_path / "eval" / "eval.md").read_text()
    for plot in ("rollout_accuracy.png", "idm_confusion.png"):
        assert (tmp_path / "eval" / plot).read_bytes().startswith(b"\x89PNG")


def test_one_role_evaluation_carries_the_other_over(world_model, tokenizer, small_dataset):
    import json

    from swirl.evaluation.world_model import carry_over, evaluate_world_model
    from swirl.data import load_dataset_dict
    from swirl.sampling import HFSampler

    rows = load_dataset_dict(small_dataset)["test"].select(range(4))
    sampler = HFSampler(world_model, tokenizer)
    full = evaluate_world_model(world_model, tokenizer, sampler, rows, max_state_tokens=24, max_action_tokens=4)
    fwm = evaluate_world_model(world_model, tokenizer, sampler, rows, max_state_tokens=24, roles=("fwm",))
    idm = evaluate_world_model(world_model, tokenizer, sampler, rows, max_action_tokens=4, roles=("idm",))
    assert "idm_accuracy" not in fwm and "idm_confusion" not in fwm and "fwm_exact_match" not in idm
    assert all("idm_accuracy" not in entry for entry in fwm["per_env"].values())
    # greedy halves put back together are the full evaluation, per env and per action too (JSON: NaN == NaN)
    same = lambda result: json.dumps(result, sort_keys=True)  # noqa: E731
    assert same(carry_over(fwm, idm)) == same(full) == same(carry_over(idm, fwm))
    changed = carry_over(full, {**idm, "idm_accuracy": 2.0, "per_env": {"swirl/WAV-KeyDelivery-v0": {"idm_accuracy": 2.0}}})
    assert changed["idm_accuracy"] == changed["per_env"]["swirl/WAV-KeyDelivery-v0"]["idm_accuracy"] == 2.0
    assert changed["fwm_nll"] == full["fwm_nll"] and changed["per_env"]["swirl/WAV-KeyDelivery-v0"]["fwm_nll"] == full["fwm_nll"]
    with pytest.raises(ValueError, match="roles must be some of fwm, idm"):
        evaluate_world_model(world_model, tokenizer, sampler, rows, roles=("policy",))


def test_report_compares_runs(tmp_path):
    import json

    from swirl.evaluation.run_comparison import compare
    from swirl.errors import SwirlError

    keys = ("fwm_exact_match", "fwm_changed_accuracy", "fwm_field_accuracy", "fwm_parse_rate", "idm_accuracy")
    for name, value in (("sft", 0.25), ("swirl", 0.5)):
        run = tmp_path / name
        run.mkdir()
        lines = [{"stage": "warmstart", **{k: 0.1 for k in keys}}, {"stage": "iter_1/phase2", **{k: value for k in keys}}]
        (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = compare({"sft-only": tmp_path / "sft", "swirl": tmp_path / "swirl"}, tmp_path / "report")
    assert rows["swirl"]["fwm_exact_match"] == 0.5 and rows["sft-only"]["stage"] == "iter_1/phase2"
    table = (tmp_path / "report" / "report.md").read_text()
    assert "| sft-only (iter_1/phase2) | 25.0% |" in table and "| swirl (iter_1/phase2) | 50.0% |" in table
    assert (tmp_path / "report" / "report.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(SwirlError, match="no metrics.jsonl in"):
        compare({"missing": tmp_path / "nothing"}, tmp_path / "report2")


# ------------------------------------------------------------------------ continuous states (ManiSkill)
def test_vector_fwm_metrics_known_answer():
    from swirl.evaluation.metrics import vector_fwm_metrics

    state = "tcp 0.0 0.0\nobj 1.0\nend"
    truth = "tcp 0.1 0.0\nobj 1.0\nend"
    predictions = ["tcp 0.1 0.0\nobj 1.0\nend",  # exact
                   "tcp 0.3 0.0\nobj 0.0\nend",  # errors 0.04 and 1.0
                   "tcp 0.1\nobj 1.0\nend",  # wrong size: does not parse
                   "garbage"]
    metrics = vector_fwm_metrics([state] * 4, predictions, [truth] * 4)
    assert metrics["parse_rate"] == 0.5 and metrics["exact_match"] == 0.25
    assert metrics["mse"] == pytest.approx((0 + 0 + 0 + 0.04 + 0 + 1.0) / 6)
    assert metrics["field_mse"] == pytest.approx({"tcp": 0.04 / 4, "obj": 1.0 / 2})
    assert metrics["copy_mse"] == pytest.approx(0.01 / 3)
    assert metrics["copy_field_mse"] == pytest.approx({"tcp": 0.01 / 2, "obj": 0.0})
    nothing = vector_fwm_metrics([state], ["garbage"], [truth])
    assert nothing["parse_rate"] == 0 and nothing["mse"] is None


def test_vector_idm_metrics_known_answer():
    from swirl.evaluation.metrics import vector_idm_metrics

    metrics = vector_idm_metrics(["0.50 0.00", "0.00 1.00", "0.5", "left"], ["0.50 0.00", "1.00 -1.00", "0.1 0.1", "0 0"])
    assert metrics["parse_rate"] == 0.5 and metrics["action_exact_match"] == 0.25
    assert metrics["action_mse"] == pytest.approx((0 + 0 + 1 + 4) / 4)
    assert metrics["zero_action_mse"] == pytest.approx((0.25 + 0 + 1 + 1 + 0.01 + 0.01 + 0 + 0) / 8)


def test_constant_answer_baselines_are_the_best_single_action():
    from swirl.evaluation.metrics import best_constant_accuracy, best_constant_equivalent_accuracy
    from swirl.evaluation.tables import baseline_line

    assert best_constant_accuracy(["drop", "toggle", "drop", "turn left"]) == 0.5
    # rows reproduced by {2}, {2, 3}, {3}, {0}: action 2 (or 3) explains two of four
    assert best_constant_equivalent_accuracy([[2], [2, 3], [3], [0]]) == 0.5
    assert best_constant_equivalent_accuracy([[]]) == 0.0
    line = baseline_line({"fwm_copy_exact_match": 0.25, "fwm_copy_field_accuracy": 0.9, "idm_constant_accuracy": 0.2,
                          "idm_constant_equivalent_accuracy": 0.3})
    assert (line["fwm_changed_accuracy"], line["fwm_exact_match"], line["idm_accuracy"],
            line["idm_equivalent_accuracy"]) == (0.0, 0.25, 0.2, 0.3)


def test_the_labels_table_averages_each_count_over_seeds_with_missing_counts_as_zero():
    from swirl.evaluation.acquisition_summary import labels_table

    rows = [{"seed": 0, "method": "wav", "round": 1, "labels": 8, "changed": 3, "actions": {"pick up": 5, "drop": 3},
             "envs": {"swirl/WAV-RandomPlay-14obj-Noisy-v0": 8}},
            {"seed": 1, "method": "wav", "round": 1, "labels": 8, "changed": 5, "actions": {"pick up": 8},
             "envs": {"swirl/WAV-KeyDelivery-6x6-v0": 8}}]
    lines = labels_table(rows).splitlines()
    assert lines[0] == ("| method | round | seeds | labels | changed the state | drop | pick up | KeyDelivery-6x6 | "
                        "RandomPlay-14obj-Noisy |")
    assert lines[2] == "| wav | 1 | 2 | 8.0 | 4.0 | 1.5 | 6.5 | 4.0 | 4.0 |" and len(lines) == 3


def test_labels_to_match_is_also_counted_per_seed_where_the_mean_hides_a_seed_that_never_matches(tmp_path):
    import json

    from swirl.evaluation.acquisition_summary import labels_cell, labels_to_match_per_seed, summarise, summarise_runs
    from swirl.errors import SwirlError

    changed = {(0, "random"): [0.5, 0.5, 0.6], (0, "wav"): [0.5, 0.7, 0.7],  # seed 0: wav matches at round 1
               (1, "random"): [0.5, 0.6, 0.7], (1, "wav"): [0.5, 0.55, 0.6]}  # seed 1: wav never does
    lines = [{"method": method, "seed": seed, "round": r, "labels": 200 + 50 * r, "fwm_changed_accuracy": value,
              "fwm_exact_match": value, "fwm_nll": 1 - value}
             for (seed, method), values in changed.items() for r, value in enumerate(values)]
    per_seed = labels_to_match_per_seed(lines)
    assert per_seed == {"wav": {0: dict.fromkeys(("fwm_nll", "fwm_exact_match", "fwm_changed_accuracy"), 250),
                                1: dict.fromkeys(("fwm_nll", "fwm_exact_match", "fwm_changed_accuracy"), None)}}
    summary, table = summarise(lines, tmp_path)
    # the mean curves (wav 0.5, 0.625, 0.65 against random's final 0.65) match at 300 labels and hide seed 1
    assert summary["labels_to_match_random_final"]["wav"]["fwm_changed_accuracy"] == 300
    assert table == (tmp_path / "summary.md").read_text()  # what the recipe and `swirl wav-report` print
    assert "| wav | 0 | 250 | 250 | 250 |\n| wav | 1 | never | never | never |" in table
    saved = json.loads((tmp_path / "summary.json").read_text())["labels_to_match_random_final_per_seed"]
    assert saved["wav"]["1"]["fwm_changed_accuracy"] is None
    # a seed that ran no random arm has nothing to match and is left out
    assert labels_to_match_per_seed([line for line in lines if (line["seed"], line["method"]) != (1, "random")]) \
        == {"wav": {0: per_seed["wav"][0]}}
    # a match at the warm start's labels is every method's round 0, not a saving: the table says so
    cells = labels_cell(200, 200), labels_cell(250, 200), labels_cell(None, 200)
    assert cells == ("200 (warm start)", "250", "never")
    # two folders with the same method, seed and round would average one seed as two: refused
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines[:3]))
    with pytest.raises(SwirlError, match="both hold random seed 0 round 0: merge folders of different seeds"):
        summarise_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
