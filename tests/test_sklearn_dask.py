"""A grid search over gdcore's estimators on a Dask cluster, through joblib's dask backend,
scores exactly as the same search run serially, and the workers' core keeps to its thread."""
import numpy as np
import pytest

pytest.importorskip("sklearn")
distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from gdcore.sklearn import MLPClassifier  # noqa: E402

GRID = {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(8,), (16, 8)]}


def _worker_state() -> dict:
    """What a worker's gdcore runs on: its backend and its core's BLAS threads."""
    import gdcore
    return {"backend": gdcore.backend(), "threads": gdcore.get_num_threads()}


@pytest.fixture(scope="module")
def client():
    # Two worker processes with one thread each, as a small real cluster would be laid out;
    # no dashboard (no port to claim, nothing to import for it).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def _search(n_jobs: int) -> GridSearchCV:
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    # Few epochs keep the test short; the serial run then warns of non-convergence, the
    # workers' warnings stay in the workers.
    est = MLPClassifier(max_iter=30, random_state=0)
    return GridSearchCV(est, GRID, cv=3, n_jobs=n_jobs).fit(X, y)


@pytest.mark.filterwarnings(f"ignore::{ConvergenceWarning.__module__}.ConvergenceWarning")
def test_grid_search_on_dask_scores_as_the_serial_search(client):
    import gdcore
    workers = client.run(_worker_state)
    assert len(workers) == 2
    # The workers run the compiled core as this process does, each on the one thread the
    # cluster gives it (Dask's nanny sets OPENBLAS_NUM_THREADS=1; the core's OpenBLAS obeys).
    for state in workers.values():
        assert state == {"backend": gdcore.backend(), "threads": 1}

    serial = _search(n_jobs=1)
    with joblib.parallel_backend("dask"):
        distributed_search = _search(n_jobs=-1)
    for key in serial.cv_results_:
        if key.startswith(("split", "mean_test", "std_test", "rank_test")):
            np.testing.assert_array_equal(distributed_search.cv_results_[key],
                                          serial.cv_results_[key], err_msg=key)
    assert distributed_search.best_params_ == serial.best_params_
