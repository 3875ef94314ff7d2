"""classifier_core is a plain library: importing it must not load any framework."""

import subprocess
import sys

FORBIDDEN = ("prefect", "mlflow", "fsspec", "s3fs", "tasks", "flows")


def test_importing_classifier_core_loads_no_framework():
    code = (
        "import sys, pkgutil, importlib, classifier_core\n"
        "for m in pkgutil.iter_modules(classifier_core.__path__): importlib.import_module('classifier_core.' + m.name)\n"
        f"print(','.join(sorted(n for n in {FORBIDDEN!r} if n in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"classifier_core loaded: {done.stdout.strip()}"


def test_classifying_modules_load_no_scikit_learn():
    """A job's shards, classify-text and serve's workers score with classifier_core.scorer: importing
    scikit-learn (and scipy.stats through it) took 1-2.5 s of each such process."""
    code = (
        "import sys, tasks.classification, classifier_core.scorer, classifier_core.inference, classifier_core.shards\n"
        "import flows.realtime, tasks.registry\n"
        "print(','.join(sorted(n for n in ('sklearn', 'scipy.stats') if n in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"loaded: {done.stdout.strip()}"
