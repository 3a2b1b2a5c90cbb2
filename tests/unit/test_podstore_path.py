"""The pod store's default path: one file per (settings module, cluster name)."""

from pathlib import Path

from djq_contract.podstore import default_path


def test_same_project_and_cluster_share_one_file():
    assert default_path("akvo-rsr", "mysite.settings", "/t") == \
        default_path("akvo-rsr", "mysite.settings", "/t")


def test_other_settings_module_or_cluster_name_gets_another_file():
    base = default_path("akvo-rsr", "mysite.settings", "/t")
    assert default_path("akvo-rsr", "othersite.settings", "/t") != base
    assert default_path("long", "mysite.settings", "/t") != base


def test_readable_name_under_tmpdir():
    path = Path(default_path("akvo-rsr", "mysite.settings", "/t"))
    assert path.parent == Path("/t/django-q-exporter")
    assert path.name.startswith("pod-metrics-akvo-rsr-") and path.suffix == ".sqlite3"


def test_unsafe_cluster_names_stay_one_file_name():
    path = Path(default_path("../a b/c", "mysite.settings", "/t"))
    assert path.parent == Path("/t/django-q-exporter")
    assert path.name.startswith("pod-metrics-a-b-c-")
    assert Path(default_path("///", None, "/t")).name.startswith("pod-metrics-cluster-")
    assert len(Path(default_path("x" * 500, None, "/t")).name) < 80
