"""python -m gdcore: the main job runs end to end and reports what it promises."""
import subprocess
import sys


def test_main_job_reports_loss_accuracy_backend_and_time():
    out = subprocess.run([sys.executable, "-m", "gdcore", "--epochs", "150", "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for expected in ("loss: first", "training accuracy:", "backend:", "time:"):
        assert expected in text
    accuracy = float(text.split("training accuracy:")[1].split("%")[0])
    assert accuracy >= 90.0
