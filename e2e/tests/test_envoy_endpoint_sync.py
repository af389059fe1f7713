"""The EDS files follow the simulated vLLM's endpoints.json: Ready pods only, never absent."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from tierscale_testbed.envoy import EndpointSync, eds_files_in, wait_until
from tierscale_testbed.simvllm import discovery

from tierscale.adapters.envoy import routing


def _pod(name: str, port: int, serving: bool = True) -> discovery.ServedPod:
    return discovery.ServedPod("ns", name, "vllm-gold", "gold", "m", port, serving)


def _endpoints(path: Path) -> list[int]:
    assignment = yaml.safe_load(path.read_text())["resources"][0]
    return sorted(
        e["endpoint"]["address"]["socket_address"]["port_value"]
        for group in assignment["endpoints"]
        for e in group["lb_endpoints"]
    )


def test_eds_files_list_serving_pods_and_empty_out_when_the_pool_goes(tmp_path: Path) -> None:
    sync = EndpointSync(tmp_path / "discovery", tmp_path / "eds", poll_s=0.01)
    eds_file = sync.path_for(routing.cluster_name("ns", "vllm-gold"))
    sync.start()
    try:
        discovery.write(tmp_path / "discovery", [_pod("p0", 1000), _pod("p1", 1001)])
        wait_until(lambda: eds_file.exists() or None, 5, "the EDS file")
        wait_until(lambda: _endpoints(eds_file) == [1000, 1001] or None, 5, "both pods")

        time.sleep(0.02)  # a distinct mtime even on coarse-clock filesystems
        discovery.write(tmp_path / "discovery", [_pod("p0", 1000), _pod("p1", 1001, False)])
        wait_until(lambda: _endpoints(eds_file) == [1000] or None, 5, "draining pod removed")

        time.sleep(0.02)
        discovery.write(tmp_path / "discovery", [])
        wait_until(lambda: _endpoints(eds_file) == [] or None, 5, "an empty assignment")
        assert eds_file.exists()
    finally:
        sync.stop()


def test_clusters_named_in_cds_get_an_eds_file_before_envoy_sees_them(tmp_path: Path) -> None:
    sync = EndpointSync(tmp_path / "discovery", tmp_path / "eds")
    cds = yaml.safe_dump(
        {
            "resources": [
                {
                    "name": "ns_vllm-new",
                    "eds_cluster_config": {
                        "eds_config": {
                            "path_config_source": {"path": str(sync.path_for("ns_vllm-new"))}
                        }
                    },
                },
                {"name": "static-pool", "type": "STATIC"},
            ]
        }
    )
    sync.ensure(eds_files_in(cds, sync.eds_dir))
    assert _endpoints(sync.path_for("ns_vllm-new")) == []
    assert not sync.path_for("static-pool").exists()
