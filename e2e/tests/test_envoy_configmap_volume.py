"""The kubelet-style volume writer swaps content atomically and only when it changed."""

from __future__ import annotations

from pathlib import Path

from tierscale_testbed import configmap_sync


def test_files_are_symlinks_through_data_and_a_change_swaps_the_data_link(
    tmp_path: Path,
) -> None:
    assert configmap_sync.write_volume(tmp_path, {"rds.yaml": "v1", "extra": "x"})
    first = (tmp_path / "..data").readlink()
    assert (tmp_path / "rds.yaml").readlink() == Path("..data/rds.yaml")
    assert (tmp_path / "rds.yaml").read_text() == "v1"

    assert configmap_sync.write_volume(tmp_path, {"rds.yaml": "v2"})
    assert (tmp_path / "..data").readlink() != first
    assert not (tmp_path / first).exists(), "the previous payload is removed"
    assert (tmp_path / "rds.yaml").read_text() == "v2"
    assert not (tmp_path / "extra").exists(), "a removed key disappears"
    assert configmap_sync.read_volume(tmp_path) == {"rds.yaml": "v2"}


def test_unchanged_content_is_not_rewritten(tmp_path: Path) -> None:
    configmap_sync.write_volume(tmp_path, {"cds.yaml": "c"})
    link = (tmp_path / "..data").readlink()
    assert not configmap_sync.write_volume(tmp_path, {"cds.yaml": "c"})
    assert (tmp_path / "..data").readlink() == link


def test_a_mount_with_items_projects_only_its_keys() -> None:
    mount = configmap_sync.Mount(Path("/x"), ("rds.yaml", "absent"))
    assert mount.project({"rds.yaml": "r", "cds.yaml": "c"}) == {"rds.yaml": "r"}
    assert configmap_sync.Mount(Path("/x")).project({"a": "1"}) == {"a": "1"}
