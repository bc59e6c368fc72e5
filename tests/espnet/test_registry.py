"""The registry: cheap import, plugins visible to ESPnet whether registered before or after
ESPnet's task modules are imported, and ESPnet's import noise kept quiet."""

import subprocess
import sys
import textwrap


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_import_espnet_ext_does_not_import_espnet_or_torch():
    result = run_python(
        """
        import sys
        import espnet_ext, espnet_ext.bin.launch, espnet_ext.data.datadir
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('espnet2', 'espnet', 'torch')))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


PLUGIN = """
import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend

class Identity(AbsFrontend):
    def __init__(self, size: int = 3):
        super().__init__()
        self.size = size
    def output_size(self):
        return self.size
    def forward(self, x, lengths):
        return x.unsqueeze(-1).expand(-1, -1, self.size), lengths
"""


def test_plugin_declared_before_espnet_import_is_registered_on_import(tmp_path):
    (tmp_path / "myplugin.py").write_text(PLUGIN)
    result = run_python(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import espnet_ext
        from espnet_ext.espnet.registry import add_plugin
        add_plugin("espnet2.tasks.asr", "frontend_choices", "identity_test", "myplugin:Identity")
        assert "espnet2.tasks.asr" not in sys.modules
        from espnet2.tasks.asr import ASRTask, frontend_choices
        cls = frontend_choices.get_class("identity_test")
        print(cls.__module__, cls.__name__)
        # and argparse accepts the name
        args = ASRTask.get_parser().parse_args(["--frontend", "identity_test", "--output_dir", "x"])
        print(args.frontend)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-3:-1] == ["myplugin Identity", "identity_test"]


def test_plugin_declared_after_espnet_import_is_registered_at_once(tmp_path):
    (tmp_path / "myplugin.py").write_text(PLUGIN)
    result = run_python(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from espnet2.tasks.asr import frontend_choices
        import espnet_ext
        from espnet_ext.espnet.registry import add_plugin
        add_plugin("espnet2.tasks.asr", "frontend_choices", "identity_test", "myplugin:Identity")
        print(frontend_choices.get_class("identity_test").__name__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("Identity")


def test_plugin_of_the_wrong_type_is_refused(tmp_path):
    (tmp_path / "badplugin.py").write_text("class NotAFrontend:\n    pass\n")
    result = run_python(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import espnet_ext
        from espnet_ext.espnet.registry import add_plugin
        import espnet2.tasks.asr
        add_plugin("espnet2.tasks.asr", "frontend_choices", "bad", "badplugin:NotAFrontend")
        """
    )
    assert result.returncode != 0
    assert "must subclass AbsFrontend" in result.stderr


def test_espnet_import_noise_is_hidden():
    result = run_python(
        """
        import espnet_ext
        import espnet2.tasks.asr
        print("imported")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"
    assert "nltk_data" not in result.stdout + result.stderr
    assert "Flash Attention" not in result.stdout + result.stderr


def test_project_task_uses_project_trainer():
    result = run_python(
        """
        from espnet_ext.espnet.tasks import ASRTask
        from espnet_ext.espnet.trainer import Trainer
        assert ASRTask.trainer is Trainer
        args = ASRTask.get_parser().parse_args(["--output_dir", "x", "--keep_last_epochs", "7"])
        print(args.keep_last_epochs)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("7")


def test_ddp_spawned_worker_gets_the_plugins(tmp_path):
    """ESPnet's DDP spawns workers that receive the task class by reference: a worker that
    unpickles espnet_ext.espnet.tasks.ASRTask imports espnet_ext, hence every declared plugin."""
    script = tmp_path / "spawn_check.py"
    script.write_text(
        textwrap.dedent(
            """
        import multiprocessing as mp

        def child(task, queue):
            import espnet2.tasks.asr as asr
            from espnet_ext.espnet.registry import _PLUGINS
            declared = _PLUGINS["espnet2.tasks.asr"]
            names = [name for _, name, _ in declared]
            present = [name in getattr(asr, attr).classes for attr, name, _ in declared]
            queue.put((task.__module__, names, present))

        if __name__ == "__main__":
            from espnet_ext.espnet.tasks import ASRTask
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            p = ctx.Process(target=child, args=(ASRTask, queue))
            p.start()
            print(queue.get(timeout=240))
            p.join()
        """
        )
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    module, names, present = eval(result.stdout.strip().splitlines()[-1])
    assert module == "espnet_ext.espnet.tasks"
    assert "w2v2_context" in names and all(present)
