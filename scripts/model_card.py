"""Write ``assets/MODEL_CARD.md`` from ``assets/demo_results.json`` (what scripts/make_demo_checkpoint.py
measured), so that every figure in the card is the measured one.

    python scripts/model_card.py [assets/demo_results.json] [assets/MODEL_CARD.md]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")  # the segmentation model's continuations
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")


def pct(v, digits: int = 1) -> str:
    return "n/a" if v is None or v != v else f"{100 * v:.{digits}f}%"


def _check(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _edge(cv: dict) -> "str | None":
    """Where a CV's chosen C sits in its grid when the accuracy was still rising there (results written
    before 2026-12-02 do not say: the rule of ``crosspoint.evaluation.svm.grid_edge`` on their scores)."""
    if "at_grid_edge" in cv:
        return cv["at_grid_edge"]
    from crosspoint.evaluation.svm import grid_edge

    return grid_edge(cv["C"], cv.get("cv_mean_acc", {}))


def _svm_figures(r: dict, key: str, name: str) -> dict:
    """One ``eval svm`` result's figures: ``name`` (C by CV on standardised features; on raw ones for a result
    written before 2026-12-02, which had only that), ``name_c``, ``name_features``, ``name_raw`` (C by CV on
    raw features), ``name_raw_c``, ``name_raw_edge`` and ``name_n`` (test objects)."""
    if key not in r:
        return {}
    res = r[key]["results"]
    raw = res.get("cv_raw") or res["cv"]
    head = res["cv"]
    return {name: head["overall_acc"], f"{name}_c": head["C"], f"{name}_features": head.get("features", "raw"),
            f"{name}_edge": _edge(head),
            f"{name}_raw": raw["overall_acc"], f"{name}_raw_c": raw["C"], f"{name}_raw_edge": _edge(raw),
            f"{name}_n": res["n_test"]}


def figures(r: dict) -> dict:
    """The headline numbers of one encoder's results (``results["trained"]`` or ``["random"]``)."""
    c = r["correspondence"].get("summary", r["correspondence"])
    return {
        **_svm_figures(r, "svm", "svm"), **_svm_figures(r, "svm_scans", "svm_scans"),
        **_svm_figures(r, "svm_big", "svm_big"), **_svm_figures(r, "svm_scans_big", "svm_scans_big"),
        "svm_fixed": {f["C"]: f["overall_acc"] for f in r["svm"]["results"]["fixed"]},
        "n_test": r["svm"]["results"]["n_test"], "n_test_scans": r["svm_scans"]["results"]["n_test"],
        "fewshot": r["fewshot"]["results"][0]["mean"], "fewshot_std": r["fewshot"]["results"][0]["std"],
        "p2i": r["retrieval"]["results"]["point_to_image"], "i2p": r["retrieval"]["results"]["image_to_point"],
        "chance": r["retrieval"]["results"]["chance"], "n_retrieval": r["retrieval"]["results"]["n"],
        "partseg": r["partseg"]["results"]["instance_miou"], "partseg_class": r["partseg"]["results"]["class_miou"],
        "partseg_acc": r["partseg"]["results"]["point_acc"], "partseg_shapes": r["partseg"]["results"]["shapes"],
        "per_category": r["partseg"]["results"].get("per_category", {}),
        "hit": c["point_to_pixel_hit"], "hit_chance": c["point_to_pixel_hit_chance"],
        "auc": c["pixel_to_point_auc"], "cell": c["cell_top1"], "cell_chance": c["cell_top1_chance"],
        "part_drop_3d": c["part_drop_3d"], "part_blob_3d": c["part_blob_3d"],
        "part_drop_2d": c["part_drop_2d"], "part_blob_2d": c["part_blob_2d"],
        "part_agree": c["part_agreement"], "part_agree_chance": c["part_agreement_chance"],
        "corr_objects": c["objects"],
        "hit_2r": c.get("point_to_pixel_hit_2r"), "hit_2r_chance": c.get("point_to_pixel_hit_2r_chance"),
        "miss_own": c.get("misses_on_own_part"), "miss_own_chance": c.get("misses_on_own_part_chance"),
        "hit_sym": c.get("point_to_pixel_hit_sym"), "hit_ceiling": c.get("point_to_pixel_hit_ceiling"),
        "hit_twin": c.get("point_to_pixel_hit_twin"), "rot_objects": c.get("rotation_symmetric_objects"),
        "fewshot_accs": (r["fewshot_100"]["results"][0]["accs"] if "fewshot_100" in r else None),
        "fewshot_scans_accs": (r["fewshot_scans_100"]["results"][0]["accs"] if "fewshot_scans_100" in r else None),
        "sil": r["umap"]["silhouette"], "knn": r["umap"]["knn_acc"],
        "partseg_frozen": (r["partseg_frozen"]["results"]["instance_miou"] if "partseg_frozen" in r else None),
        "partseg_first": (r["partseg_finetune_first"]["results"]["instance_miou"]
                          if "partseg_finetune_first" in r else None),
        "partseg_conts": [r[f"partseg_continued_{o}"]["results"]["instance_miou"] for o in ORDINALS
                          if f"partseg_continued_{o}" in r],
    }


def _svm_goals(t: dict, z: dict) -> list:
    """Issue 12's SVM goals, on the figures of C by CV on standardised features (on raw ones for results
    written before 2026-12-02); the 1200-object held-out set adds its own row when measured."""
    rows = []
    for name, what in (("svm", "whole objects"), ("svm_scans", "partial scans")):
        f = t[f"{name}_features"]
        rows += [(f"linear SVM (C by CV, {f} features), {what}: random <= 70 % ({pct(z[name])})", z[name] <= 0.70),
                 (f"... pretrained >= random + 15 points ({pct(t[name])}, {100 * (t[name] - z[name]):+.1f})",
                  t[name] >= z[name] + 0.15)]
        big = {"svm": "svm_big", "svm_scans": "svm_scans_big"}[name]
        if big in t and big in z:
            rows.append((f"... on {t[big + '_n']} held-out {what}: random {pct(z[big])}, pretrained "
                         f"{pct(t[big])} ({100 * (t[big] - z[big]):+.1f}) >= random + 15 points",
                         t[big] >= z[big] + 0.15))
    return rows


def _svm_rows(t: dict, z: dict) -> str:
    """The SVM rows of the results table: C by CV on standardised features, then on raw ones."""
    def c_text(f: dict, key: str) -> str:
        edge = f.get(f"{key}_edge")
        return f"C = {f[f'{key}_c']:g}" + (f", the grid's {edge}" if edge else "")

    rows = []
    for name, what in (("svm", f"whole objects (`crosspoint eval svm`, {t['svm_n']} test objects)"),
                       ("svm_scans", "single-view partial scans with noise and clutter (`--data .../scans`)"),
                       ("svm_big", f"{t.get('svm_big_n')} held-out whole objects (`--data runs/demo-hard-seed1-big "
                                   "--val-fraction 0.5`)"),
                       ("svm_scans_big", f"partial scans of {t.get('svm_scans_big_n')} held-out objects (`--data "
                                         "runs/demo-hard-seed1-big-scans/scans --val-fraction 0.5`)")):
        if name not in t or name not in z:
            continue
        rows.append(f"| linear SVM, C by 5-fold CV on {t[name + '_features']} features, {what} | "
                    f"**{pct(t[name])}** ({c_text(t, name)}) | {pct(z[name])} ({c_text(z, name)}) |")
        if t[name + "_features"] != "raw":
            rows.append(f"| ... on raw features | {pct(t[name + '_raw'])} ({c_text(t, name + '_raw')}) | "
                        f"{pct(z[name + '_raw'])} ({c_text(z, name + '_raw')}) |")
    return "\n".join(rows)


def _svm_note(t: dict, z: dict) -> str:
    """Why the card's SVM figures are on standardised features (once they are)."""
    if t.get("svm_features") != "standardised":
        return ""
    return ("\n**The SVM figures are measured on standardised features** (`StandardScaler` fitted on the training "
            "rows; `crosspoint eval svm` reports both). A random-weight DGCNN's features are ~50x smaller than "
            "this checkpoint's, and on raw features the CV grid (C up to 10) stops short of the C they need: "
            f"its C lands on the grid's top and random weights score {pct(z['svm_raw'])} on whole objects, against "
            f"{pct(z['svm'])} standardised. Until 2026-12-02 this card showed the raw figures, so the gap between "
            f"pretrained and random weights on whole objects looked like {100 * (t['svm_raw'] - z['svm_raw']):+.1f} "
            f"points; with a baseline that can win it is {100 * (t['svm'] - z['svm']):+.1f}. The few-shot protocol "
            "always standardised (the reference's own few-shot code does), which is why its gap was small.\n")


def _label_text(results: dict) -> str:
    """Label efficiency on the 1200-object held-out set: the SVM fitted on n labelled objects per class."""
    try:
        a = results["trained"]["svm_big"]["results"]["label_efficiency"]
        b = results["random"]["svm_big"]["results"]["label_efficiency"]
        t, z = results["trained"]["svm_big"]["results"], results["random"]["svm_big"]["results"]
    except KeyError:
        return ""
    if [r["per_class"] for r in a] != [r["per_class"] for r in b]:
        return ""
    n_all = t["n_train"] // max(t["num_classes"], 1)
    head = " | ".join(str(r["per_class"]) for r in a)
    d = [np.asarray(p["accs"]) - np.asarray(q["accs"]) for p, q in zip(a, b)]
    return (f"\n**Where pretraining matters: few labels.** The same SVM (standardised, C = {a[0]['C']:g}) fitted on only n "
            f"labelled objects per class of the 1200-object held-out training split, scored on its {t['n_test']} test "
            f"objects; {a[0]['repeats']} seeded draws per n, the same objects for both encoders (`crosspoint eval svm "
            f"--labels-per-class`):\n\n"
            f"| labelled objects per class | {head} | all {n_all} (C by CV) |\n|---|{'---|' * (len(a) + 1)}\n"
            f"| pretrained | {' | '.join(pct(r['mean']) for r in a)} | {pct(t['cv']['overall_acc'])} |\n"
            f"| random weights | {' | '.join(pct(r['mean']) for r in b)} | {pct(z['cv']['overall_acc'])} |\n"
            f"| difference (points; s.e. over the paired draws) | "
            + " | ".join(f"{100 * x.mean():+.1f} +- {100 * x.std(ddof=1) / np.sqrt(x.size):.1f}" for x in d)
            + f" | {100 * (t['cv']['overall_acc'] - z['cv']['overall_acc']):+.1f} |\n")


def _sensor_figures(r: dict) -> dict:
    """One encoder's figures on the held-out demo with sensor-like points (``results["sensor"][name]``)."""
    ret = r["retrieval"]["results"]
    c = r["correspondence"].get("summary", r["correspondence"])
    return {"svm": r["svm"]["results"]["cv"]["overall_acc"], "svm_c": r["svm"]["results"]["cv"]["C"],
            "svm_n": r["svm"]["results"]["n_test"],
            "big": r["svm_big"]["results"]["cv"]["overall_acc"], "big_n": r["svm_big"]["results"]["n_test"],
            "labels": r["svm_big"]["results"].get("label_efficiency", []),
            "few": np.asarray(r["fewshot_100"]["results"][0]["accs"], float),
            "p2i": ret["point_to_image"]["top1"], "i2p": ret["image_to_point"]["top1"], "chance": ret["chance"]["top1"],
            "n_ret": ret["n"], "sil": r["umap"]["silhouette"], "knn": r["umap"]["knn_acc"],
            "partseg": r["partseg"]["results"]["instance_miou"] if "partseg" in r else None,
            "partseg_shapes": r["partseg"]["results"]["shapes"] if "partseg" in r else None,
            "hit": c["point_to_pixel_hit"], "auc": c["pixel_to_point_auc"], "corr_n": c["objects"]}


def _sensor_text(results: dict) -> str:
    """The section on sensor-like points (``make_demo_checkpoint.py --sensor-only``), when measured."""
    s = results.get("sensor")
    if not s:
        return ""
    t, z = _sensor_figures(s["trained"]), _sensor_figures(s["random"])
    nu = s["nuisance"]
    few = _fewshot_100_row({"accs": list(t["few"])}, {"accs": list(z["few"])}, "accs", "few-shot 5-way 10-shot, ")
    labels = ""
    if t["labels"] and [a["per_class"] for a in t["labels"]] == [b["per_class"] for b in z["labels"]]:
        ta = " / ".join(f"{100 * a['mean']:.1f}" for a in t["labels"])
        za = " / ".join(f"{100 * b['mean']:.1f}" for b in z["labels"])
        labels = (f"\n| ... fitted on {' / '.join(str(a['per_class']) for a in t['labels'])} labelled objects per class "
                  f"(standardised, C = {t['labels'][0]['C']:g}, {t['labels'][0]['repeats']} paired draws) | {ta} | {za} |")
    seg = (f"\n| part segmentation, the shipped head, instance mIoU ({t['partseg_shapes']} test shapes) | "
           f"**{pct(t['partseg'])}** | not kept (the random-weight twin of the segmentation model was not shipped) |"
           if t["partseg"] is not None else "")
    return f"""
## On sensor-like points: the held-out objects sampled as a depth sensor sees them

The paper pretrains on clean CAD models (ShapeNet) and shows what that bought on real scans (ScanObjectNN).
The same test here: this checkpoint was pretrained on **clean** samples of the seed-0 demo; below, the
held-out seed-1 objects (the same meshes and views as above) with their points drawn the way a sensor
sees an object, `{s['demo']}`: the density falls off across the object along a random direction (n of
{nu.get('pool', 2)}n surface samples drawn with weight exp({nu['density']:g} x.d)) and every coordinate is jittered
(sigma {nu['jitter']:g}, clipped at 2.5 sigma). A random DGCNN has no invariance to either; the paper's
augmentations (random dropout, jitter) teach some. The explorer's embedding map has this dataset as
"Demo, held-out objects, sensor-like points" (`--data demo-sensor`).

| protocol, sensor-like points | pretrained (this checkpoint) | random weights |
|---|---|---|
| linear SVM, C by 5-fold CV on standardised features, {t['svm_n']} test objects | **{pct(t['svm'])}** (C = {t['svm_c']:g}) | {pct(z['svm'])} (C = {z['svm_c']:g}) |
| ... {t['big_n']} held-out test objects (1200 training) | **{pct(t['big'])}** | {pct(z['big'])} |{labels}
{few.lstrip()}
| retrieval point cloud -> its view / view -> point cloud, top-1 ({t['n_ret']} candidates; chance {pct(t['chance'], 2)}) | **{pct(t['p2i'])} / {pct(t['i2p'])}** | {pct(z['p2i'])} / {pct(z['i2p'])} |
| UMAP of these objects: class silhouette / 5-NN accuracy in 2-D | **{t['sil']:.2f} / {pct(t['knn'])}** | {z['sil']:.2f} / {pct(z['knn'])} |{seg}
| point -> pixel hit within 8 px / pixel -> points AUC ({t['corr_n']} objects) | **{pct(t['hit'])} / {t['auc']:.3f}** | {pct(z['hit'])} / {z['auc']:.3f} |
"""


def _frontier_text(results: dict) -> str:
    """Why the goals are checked on two held-out demos: ``results["frontier"]`` (``scripts/nuisance_frontier.py
    --results``), the SVM and map goals against the strength of the sensor nuisance, when measured."""
    f = results.get("frontier")
    if not f:
        return ""
    rows = []
    for r in f["settings"]:
        name = "plain demo" if r["density"] == 0 else f"{r['density']:g} / {r['pool']} / {r['jitter']:g}"
        both = r["random_le_70"] and r["gap_ge_15"]
        rows.append(f"| {name} | {pct(r['svm_trained'])} | {pct(r['svm_random'])} | {_check(both)} | "
                    f"{r['sil_trained']:+.2f} | {r['sil_random']:+.2f} | {_check(r['sil_gap_ge_015'])} |")
    none = not any(r["random_le_70"] and r["gap_ge_15"] and r["sil_gap_ge_015"] for r in f["settings"])
    verdict = ("No setting meets both: the nuisance that takes random weights below 70 % also takes the 2-D map "
               "of every encoder apart." if none else "Where both columns say met, one demo meets both goals.")
    return f"""
## Why two held-out demos: the SVM goal and the map goal pull against each other

Issue 12 asks one held-out demo for two things: random weights at or below 70 % with a linear SVM (the
points must be hard enough to defeat an untrained DGCNN) and a UMAP whose class silhouette beats random
weights' by 0.15 (the points must be easy enough for a 2-D map to show classes at all). Measured on the
seed-1 objects at {len(f['settings'])} strengths of the sensor nuisance (`{f['command']}`; density / pool / jitter as
`make-demo --density --density-pool --jitter`; SVM on 768 training and 96 test objects as above,
silhouette the mean over three UMAP seeds; plot `docs/images/nuisance-frontier.svg`):

| points | SVM pretrained | random | random <= 70 % and +15 | silhouette pretrained | random | +0.15 |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + f"""

{verdict} The same recipe pretrained on sensor-like samples moved the map's silhouette on
5 / 8 / 0.01 points by only +0.02 (docs/NOTES.md, session 14). So the card checks the goals twice: on
the plain held-out demo above and on the sensor-like points.
"""


def _count_word(n: int) -> str:
    return {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}.get(n, str(n))


def _levers_text(results: dict) -> str:
    """What did not close the gap on partial scans: ``results["scans_levers"]`` (``make_demo_checkpoint.py
    --scans-levers``), when measured."""
    lv = results.get("scans_levers")
    if not lv:
        return ""
    base, ship = lv["random"], lv["shipped"]
    n = lv["rows"][0]["n_test"] if lv["rows"] else 0
    se = 100 * (ship * (1 - ship) / n) ** 0.5 if n else float("nan")
    rows = [f"| shipped | the recipe on seed 0's clean points (the card's encoder) | 18 | {pct(ship)} | "
            f"{100 * (ship - base):+.1f} |"]
    for r in lv["rows"]:
        epochs = "18" if r["epochs"] == "last" else r["epochs"].replace("epoch ", "") + " of 18"
        mins = f", {r['minutes']:.0f} min" if r.get("minutes") and r["epochs"] == "last" else ""
        rows.append(f"| `{r['checkpoint']}` | the recipe {r['what']}{mins} | {epochs} | {pct(r['acc'])} | "
                    f"{100 * (r['acc'] - base):+.1f} |")
    rows.append(f"| random weights | - | - | {pct(base)} | |")
    gaps = [ship - base] + [r["acc"] - base for r in lv["rows"]]
    nc = lv["noclutter"]
    if max(gaps) >= 0.15:
        verdict = "At least one of them reaches +15 points: see the table."
    else:
        tried = ("the domain of the pretraining data, a partial-view augmentation nor five times as many distinct "
                 "objects in the same steps is" if any(r["key"] == "diverse" for r in lv["rows"]) else
                 "the domain of the pretraining data nor a partial-view augmentation is")
        verdict = (f"None reaches +15: the gap stays between {100 * min(gaps):+.1f} and {100 * max(gaps):+.1f} "
                   f"points whatever the pretraining saw, so neither {tried} what this recipe lacks on scans.")
    return f"""
## What did not close the gap on partial scans

The partial-scan goal (pretrained >= random + 15 points on 1200 held-out scans) is the one linear-SVM
goal that no encoder of ours meets. The recipe was pretrained {_count_word(len({r['key'] for r in lv['rows']}))} more ways, each measured like the
shipped encoder (`python scripts/make_demo_checkpoint.py --scans-levers`: standardised features, C by
5-fold CV, {n} of the 2400 scans of `{lv['data']}` as test; one figure is +-{se:.1f} points, s.e.;
{lv.get('note', '')}):

| encoder | pretrained | epochs | partial scans | over random |
|---|---|---|---|---|
""" + "\n".join(rows) + f"""

{verdict}

Scans of the same objects without clutter (`make-demo --no-clutter`, `{lv['noclutter_data']}`): shipped
{pct(nc['trained'])}, random {pct(nc['random'])} ({100 * (nc['trained'] - nc['random']):+.1f}). The clutter costs
both encoders about {100 * (nc['trained'] - ship):.0f} points and leaves the gap as it was.
"""


def _sensor_goals(results: dict) -> list:
    """Issue 12's goals measured again on the held-out objects with sensor-like points, when measured."""
    s = results.get("sensor")
    if not s:
        return []
    t, z = _sensor_figures(s["trained"]), _sensor_figures(s["random"])
    lead = "sensor-like points (`make-demo --seed 1 --sensor`): "
    rows = [(f"{lead}linear SVM (C by CV, standardised), whole objects: random <= 70 % ({pct(z['svm'])})",
             z["svm"] <= 0.70),
            (f"... pretrained >= random + 15 points ({pct(t['svm'])}, {100 * (t['svm'] - z['svm']):+.1f})",
             t["svm"] >= z["svm"] + 0.15),
            (f"... on {t['big_n']} held-out objects: random <= 70 % ({pct(z['big'])}) and pretrained >= random + 15 "
             f"points ({pct(t['big'])}, {100 * (t['big'] - z['big']):+.1f})",
             z["big"] <= 0.70 and t["big"] >= z["big"] + 0.15),
            (f"... few-shot 5-way 10-shot: pretrained >= random + 10 points ({t['few'].mean():.1f} vs "
             f"{z['few'].mean():.1f} %, {t['few'].size} paired episodes)", t["few"].mean() >= z["few"].mean() + 10),
            (f"... retrieval top-1 >= 20 x chance ({pct(t['p2i'])}, chance {pct(t['chance'], 2)})",
             t["p2i"] >= 20 * t["chance"]),
            (f"... UMAP silhouette: pretrained >= random + 0.15 ({t['sil']:.2f} vs {z['sil']:.2f})",
             t["sil"] >= z["sil"] + 0.15)]
    if t["partseg"] is not None:
        rows.append((f"... part segmentation, shipped head: instance mIoU >= 0.75 ({pct(t['partseg'])})",
                     t["partseg"] >= 0.75))
    return rows


def _seg_text(results: dict) -> str:
    """How the shipped segmentation model was trained."""
    n = results.get("seg_epochs", 10)
    if results.get("seg_backbone", "frozen") != "finetune":
        return (f"- Segmentation head: `crosspoint finetune-partseg --backbone frozen` on the seed-0 demo's train "
                f"split, {n} epochs, best epoch on its val split. The same head on a frozen randomly initialised "
                "encoder is the baseline.")
    prior = results.get("seg_epochs_frozen")
    cont = results.get("seg_continued")
    more = (f", then {cont['epochs']} more from that run's best epoch (a warm restart of the cosine schedule at lr "
            f"{cont['lr']:g})" if cont else "")
    links = []
    then = (cont or {}).get("then")
    while then:
        where = (f" on the {Path(then['data']).name.replace('demo-hard-seed', 'seed-')} demo (its "
                 f"{then['train_objects']} train objects, best epoch on its val split; " if then.get("data") else " (")
        links.append(f"{then['epochs']} more from that one's best epoch{where}lr {then['lr']:g})")
        then = then.get("then")
    if links:
        more += (", " if len(links) > 1 else "") + ", ".join(links[:-1]) + " and " + links[-1]
    runs = 2 + len(links) if cont else 1
    return (f"- Segmentation: `crosspoint finetune-partseg --backbone finetune` on the seed-0 demo's train split, "
            f"{n} epochs (SGD lr 0.1 cosine, batch 8){more}, best epoch on its val split, from the pretrained encoder "
            f"and the head first trained on it frozen" + (f" ({prior} epochs)" if prior else "") + ": the encoder is "
            "fine-tuned with the head, as the paper evaluates segmentation, and ships as the bundle's "
            "`seg_backbone`; embeddings, retrieval, heatmaps and every other figure here use the pretrained "
            "`point_encoder`. The baseline is the same model trained from random weights for the same epochs"
            + (f" (the same {NUMBERS[runs]} runs)" if runs > 1 else "") + ".")


def _seg_table_rows(results: dict) -> str:
    """The segmentation entries of the "what is in it" table."""
    head = "| `seg_head` | the reference's part-segmentation head on the DGCNN, 24 demo categories |"
    if results.get("seg_backbone", "frozen") != "finetune":
        return head + " trained on the *frozen* pretrained encoder |"
    return (head + " fine-tuned with `seg_backbone` |\n| `seg_backbone` | a copy of the DGCNN, used by segmentation "
            "only | the pretrained encoder fine-tuned with the head (`finetune-partseg --backbone finetune`) |")


def _seg_row(t: dict, z: dict) -> str:
    rows = ""
    conts = list(zip(t.get("partseg_conts") or [], z.get("partseg_conts") or []))
    for i in reversed(range(len(conts))):  # the latest first
        rows += (f"\n| ... after the {ORDINALS[i]} continuation only "
                 f"({'the previous shipped model' if i == len(conts) - 1 else 'shipped before that'}) | "
                 f"{100 * conts[i][0]:.1f} % | {100 * conts[i][1]:.1f} % |")
    if t.get("partseg_first") is not None and z.get("partseg_first") is not None:
        rows += (f"\n| ... after the first fine-tuning run only ({'shipped before that' if conts else 'the previous shipped model'}) | "
                 f"{100 * t['partseg_first']:.1f} % | {100 * z['partseg_first']:.1f} % |")
    if t.get("partseg_frozen") is not None and z.get("partseg_frozen") is not None:
        rows += (f"\n| ... the head alone on the frozen encoder (shipped before that) | "
                 f"{100 * t['partseg_frozen']:.1f} % | {100 * z['partseg_frozen']:.1f} % |")
    return rows


def _ablation_rows(a: dict) -> list:
    """``(label, with, without, margin)`` per global figure of the no-dense-term ablation: the margin is
    the 95 % half-width of the difference (two independent proportions; the few-shot episodes are the same
    for both encoders, so theirs is the paired difference's)."""
    w, o = a["with"], a["without"]
    rows = []
    for key, n_key, label in (("svm_whole", "svm_whole_n", "linear SVM (C by CV, raw features), held-out whole objects"),
                              ("svm_scans", "svm_scans_n", "linear SVM (C by CV, raw features), partial scans of unseen objects"),
                              ("retrieval_top1", "retrieval_n", "retrieval point -> image top-1"),
                              ("retrieval_top1_i2p", "retrieval_n", "retrieval image -> point top-1")):
        p, q, n = w[key], o[key], w[n_key]
        rows.append((f"{label} ({n} {'test objects' if 'svm' in key else 'objects'})", p, q,
                     1.96 * float(np.sqrt((p * (1 - p) + q * (1 - q)) / n))))
    d = np.asarray(w["fewshot_accs"], float) - np.asarray(o["fewshot_accs"], float)
    rows.append((f"few-shot 5-way 10-shot, whole objects ({d.size} paired episodes)", float(np.mean(w["fewshot_accs"])) / 100,
                 float(np.mean(o["fewshot_accs"])) / 100, 1.96 * float(d.std(ddof=1) / np.sqrt(d.size)) / 100))
    return rows


def _ablation_text(a: "dict | None") -> str:
    if not a:
        return ""
    mins = f", {a['pretrain_seconds'] / 60:.1f} min ({a.get('machine', '')})" if a.get("pretrain_seconds") else ""
    rows = "\n".join(f"| {label} | {pct(p)} | {pct(q)} | {100 * (p - q):+.1f} (+-{100 * m:.1f}) |"
                      for label, p, q, m in _ablation_rows(a))
    return f"""
What the dense term costs the global figures: the same recipe pretrained again with the term off
(`--set {a['set']}`, the same config, seed and data{mins}; `make_demo_checkpoint.py --no-dense-ablation`),
both encoders measured on samples large enough to see a few points:

| | with the dense term (shipped) | without | difference (95 % half-width) |
|---|---|---|---|
{rows}
"""


def _ablation_goal(a: "dict | None") -> list:
    if not a:
        return []
    rows = _ablation_rows(a)
    worse = [label for label, p, q, m in rows if p - q < -m]
    return [("global figures (SVM, retrieval, few-shot) no worse than without the dense term (issue 11; no "
             "difference below minus its 95 % half-width" + (f"; worse: {', '.join(worse)}" if worse else "") + ")",
             not worse)]


def _pretrain_goal(pre: dict, rerun: "dict | None", trained_svm: float) -> tuple:
    """The 40-minute budget: the shipped run's time and, when measured, the same recipe rerun with the
    current code (``make_demo_checkpoint.py --rerun-pretrain``), which then decides the row: the budget is
    the recipe's, and the rerun's encoder is shown to train as well (the SVM protocol beside the
    shipped encoder's)."""
    minutes = (pre["seconds"] or 0) / 60
    shipped = f"the shipped run {minutes:.1f} min" + (f", {pre['note']}" if pre.get("note") else "")
    if not rerun or rerun.get("seconds") is None:
        return (f"pretraining <= 40 min on 2 CPU cores ({shipped})", minutes <= 40)
    rm = rerun["seconds"] / 60
    return (f"pretraining <= 40 min on 2 CPU cores (the recipe rerun with the current code, alone: {rm:.1f} min on "
            f"{rerun['machine']}, its encoder {100 * rerun['svm']:.1f} % on the SVM protocol (raw features) against "
            f"the shipped encoder's {100 * trained_svm:.1f} %; {shipped} with the code of its day)", rm <= 40)


def _pretrain_rerun_text(pre: dict, rerun: "dict | None", trained_svm: float) -> str:
    if not rerun or rerun.get("seconds") is None:
        return ""
    per_epoch = float(np.median(rerun["epoch_seconds"]))
    per_val = float(np.median(rerun["validation_seconds"])) if rerun["validation_seconds"] else float("nan")
    return (f"\n- Time: the shipped weights come from a run of {(pre['seconds'] or 0) / 60:.1f} min with the code of "
            f"its day. The same command rerun with the current code ({rerun['code']}; `make_demo_checkpoint.py "
            f"--rerun-pretrain`) took **{rerun['seconds'] / 60:.1f} min** alone on {rerun['machine']} (epochs "
            f"{min(rerun['epoch_seconds']):.0f}-{max(rerun['epoch_seconds']):.0f} s, median {per_epoch:.0f} s: the "
            f"host's speed varies from hour to hour; a validation {per_val:.0f} s; loss {rerun['loss_first']:.2f} -> "
            f"{rerun['loss_last']:.2f}); its encoder reaches {100 * rerun['svm']:.1f} % on the held-out linear-SVM "
            f"protocol (C by CV on raw features: C = {rerun['svm_c']}, {rerun['svm_n']} test objects) where the "
            f"shipped encoder reaches "
            f"{100 * trained_svm:.1f} %. It is not bit-identical to the shipped run (another CPU, and float32 "
            f"rounding and ties between duplicated points are now taken in another order), and it is not shipped: "
            f"the segmentation model and the dense heads are fitted on the shipped encoder.")


def _category_text(c: "dict | None") -> str:
    """The category inference of the segmentation head (for a file without a category)."""
    if not c:
        return ""
    return (f"\nCategory inference for the segmentation head (a file that does not say its category), on {c['n']} "
            f"held-out meshes: the bundle's category probe (logistic regression on the global feature, fitted "
            f"on the {c['fitted_on']} seed-0 demo objects) **{100 * c['probe_acc']:.0f} %**; the head's own score "
            f"(the probability mass on each category's parts) {100 * c['head_score_acc']:.0f} %; chance "
            f"{100 / 24:.0f} %.\n")


def _context(n: int, lead: str) -> str:
    n = int(n or 0)
    return f"{lead}{'one' if n == 1 else n} 3x3 context layer{'' if n == 1 else 's'}" if n else ""


def _refine_text(dr: "dict | None", j: "dict | None") -> str:
    """The refine-dense step (what the shipped dense heads are)."""
    if not dr:
        return ""
    st, c = dr["settings"], dr["curve"]
    branch = st.get("image_branch", "none")
    src = dr.get("checkpoint", "runs/cpu-demo-hard/checkpoints/last.pt")
    own = (f", with their own copies of the ResNet's {branch.replace('+', ' and ')} (started from the image "
           f"encoder's, fitted with the heads at lr {st.get('branch_lr', 0):g}; the image encoder itself is not "
           "touched)") if branch != "none" else ""
    data = dr.get("data", "runs/demo-hard-seed0")
    split = dr.get("split", "train")
    seed = data.rstrip("/").rsplit("seed", 1)[-1] if "seed" in data else "0"
    start = dr["started_from"]
    if start.startswith("the checkpoint's heads"):
        start = "the heads the bundle shipped before (the earlier refits' rows below)" + start[len("the checkpoint's heads"):]
    ctx = st.get("point_context", "none")
    pooled = ("; the point head also reads the object's pooled map (max and mean over its points: which way the "
              "object faces)") if ctx != "none" else ""
    return (f"""
- Dense heads: `crosspoint refine-dense --checkpoint {src} --data
  {data}{' --split ' + split if split != 'train' else ''} --objects {dr['objects']} --steps {st['steps']}{' --image-branch ' + branch if branch != 'none' else ''}{' --point-context ' + ctx if ctx != 'none' else ''}`:
  the encoders frozen (every other figure is theirs), heads of stride {st['stride']}{_context(st['context'], " with ")}{own}{pooled},
  fitted on {dr['views_used']} views of {dr['objects']} seed-{seed} objects against the renderer's exact
  correspondences (mesh depth buffer), starting from {start}; loss {c[0]['loss']:.2f} ->
  {c[-1]['loss']:.2f}, {dr['seconds'] / 60:.1f} min. Pretraining's own heads (the joint dense term) are measured
  below too.
""")


def _heldout_rise(h: dict) -> "tuple[float, float]":
    """``(last - first, its 95 % half-width)``: the held-out accuracy at the last evaluated epoch minus
    the first, and 1.96 standard errors of that difference of two proportions (unpaired, so
    conservative: both are measured on the same test objects)."""
    a, b = h["points"][0]["acc"], h["points"][-1]["acc"]
    n = h["n_test"]
    return b - a, float(1.96 * np.sqrt(a * (1 - a) / n + b * (1 - b) / n))


def _heldout_text(results: dict) -> str:
    h = results.get("curve_heldout")
    if not h or not h.get("points"):
        return ""
    d, ci = _heldout_rise(h)
    pts = ", ".join(f"{p['epoch']}: {100 * p['acc']:.1f}%" for p in h["points"])
    return (f"\n- The same recipe run again with a checkpoint per epoch (`python scripts/heldout_curve.py`), each "
            f"epoch's encoder evaluated by `crosspoint eval svm` on {h['n_test']} held-out test objects (seed 1, "
            f"C by CV on {h.get('features', 'raw')} features; +-{100 * h['points'][-1]['half_ci']:.1f} points): {pts}; "
            f"random weights {100 * h['random']:.1f}%" + (f" ({100 * h['random_raw']:.1f}% on raw features)"
                                                          if h.get("random_raw") is not None else "")
            + (f", the shipped checkpoint {100 * h['shipped']:.1f}% (this run is not "
                                           "bit-identical to the shipped one)" if h.get("shipped") is not None else "")
            + f". From epoch {h['points'][0]['epoch']} to {h['points'][-1]['epoch']}: "
            f"{100 * d:+.1f} points (95 % half-width of the difference {100 * ci:.1f}). Green in the plot.")


def _heldout_goal(results: dict) -> list:
    h = results.get("curve_heldout")
    if not h or not h.get("points"):
        return []
    d, ci = _heldout_rise(h)
    return [(f"... on {h['n_test']} held-out objects, epoch {h['points'][0]['epoch']} -> {h['points'][-1]['epoch']}: "
             f"{100 * d:+.1f} points, more than the 95 % half-width {100 * ci:.1f}", d > ci)]


def _dense_check_goal(results: dict) -> list:
    """The hit-rate goal checked again on a larger held-out sample (``--dense-check-objects``), when measured."""
    c = results["trained"].get("correspondence_check")
    if not c:
        return []
    return [(f"... on {c['objects']} held-out objects ({pct(c['point_to_pixel_hit'])}; within 16 px "
             f"{pct(c['point_to_pixel_hit_2r'])}, AUC {c['pixel_to_point_auc']:.3f})", c["point_to_pixel_hit"] >= 0.5)]


def _fewshot_goal(t: dict, z: dict) -> "tuple[str, bool]":
    """The few-shot goal, checked on the 100 paired episodes when measured, else on the 10."""
    label = "few-shot 5-way 10-shot, whole objects: pretrained >= random + 10 points"
    if t.get("fewshot_accs") and z.get("fewshot_accs"):
        a, b = float(np.mean(t["fewshot_accs"])), float(np.mean(z["fewshot_accs"]))
        return f"{label} (checked on the {len(t['fewshot_accs'])} episodes)", a >= b + 10
    return label, t["fewshot"] >= z["fewshot"] + 10


def _fewshot_scans_goal(t: dict, z: dict) -> "list[tuple[str, bool]]":
    """The few-shot goal on the partial scans (100 paired episodes), when measured."""
    if not t.get("fewshot_scans_accs") or not z.get("fewshot_scans_accs"):
        return []
    a, b = float(np.mean(t["fewshot_scans_accs"])), float(np.mean(z["fewshot_scans_accs"]))
    return [(f"... on the partial scans: pretrained >= random + 10 points (checked on the "
             f"{len(t['fewshot_scans_accs'])} episodes)", a >= b + 10)]


def _fewshot_100_row(t: dict, z: dict, key: str = "fewshot_accs", what: str = "") -> str:
    """The few-shot row over 100 episodes (the same episodes for both encoders: a paired difference)."""
    if not t.get(key) or not z.get(key) or len(t[key]) != len(z[key]):
        return ""
    import numpy as np

    a, b = np.asarray(t[key], float), np.asarray(z[key], float)
    d = a - b
    se = d.std(ddof=1) / np.sqrt(d.size)
    return (f"\n| ... {what}{d.size} episodes, the same for both (difference {d.mean():+.1f} +- {se:.1f} points, s.e.; "
            f"pretrained better in {int((d > 0).sum())}, worse in {int((d < 0).sum())}) | **{a.mean():.1f} +- "
            f"{a.std():.1f}%** | {b.mean():.1f} +- {b.std():.1f}% |")


def _miss_rows(t: dict, z: dict) -> str:
    """Where the dense arg-max lands: within twice the hit radius, and the misses' parts."""
    if t.get("hit_2r") is None or z.get("hit_2r") is None:
        return ""
    rows = (f"\n| ... within 16 px (chance {pct(t['hit_2r_chance'])}) | **{pct(t['hit_2r'])}** | {pct(z['hit_2r'])} |")
    if t.get("miss_own") is not None and z.get("miss_own") is not None:
        rows += (f"\n| ... misses that land on the point's own part: near misses and symmetric twins (chance "
                 f"{pct(t['miss_own_chance'])} / {pct(z['miss_own_chance'])}) | **{pct(t['miss_own'])}** | "
                 f"{pct(z['miss_own'])} |")
    if t.get("hit_sym") is not None and z.get("hit_sym") is not None:
        rows += (f"\n| ... up to the object's rotational symmetries (a rotated camera sees the same picture; "
                 f"{pct(t['rot_objects'])} of the objects have one) | **{pct(t['hit_sym'])}** | {pct(z['hit_sym'])} |"
                 f"\n| ... ceiling of the hit rate: an oracle that knows each point up to those rotations "
                 f"(`analysis.symmetry`) | {pct(t['hit_ceiling'])} | {pct(z['hit_ceiling'])} |"
                 f"\n| ... counting mirror twins as hits (a diagnostic: the image's handedness tells them apart) | "
                 f"{pct(t['hit_twin'])} | {pct(z['hit_twin'])} |")
    return rows


def _heads_row(label: str, c: dict) -> str:
    """A row of earlier dense heads' figures: hit / up to rotations / AUC."""
    p = c.get("summary", c)
    sym = pct(p["point_to_pixel_hit_sym"]) if p.get("point_to_pixel_hit_sym") is not None else "-"
    return (f"\n| ... with {label}: hit / up to rotations / AUC | {pct(p['point_to_pixel_hit'])} / {sym} / "
            f"{p['pixel_to_point_auc']:.3f} | |")


def _joint_rows(j: "dict | None", prev: "dict | None" = None, history: "list | None" = None) -> str:
    rows = ""
    if prev:
        st = (prev.get("dense_refine") or {}).get("settings", {})
        rows += _heads_row(f"the earlier heads on the frozen features alone (`refine-dense`, "
                           f"{(prev.get('dense_refine') or {}).get('objects', '?')} objects, {st.get('steps', '?')} "
                           "steps, no image branch)", prev)
    for h in history or []:
        dr = h.get("dense_refine") or {}
        st = dr.get("settings", {})
        branch = st.get("image_branch", "none")
        own = ", own ResNet " + branch.replace("+", " and ") if branch != "none" else ""
        own += ", the object's pooled map" if st.get("point_context", "none") == "pooled" else ""
        rows += _heads_row(f"the heads shipped before (`refine-dense`, {dr.get('objects', '?')} objects, "
                           f"{st.get('steps', '?')} steps{own})", h)
    if j:
        rows += (f"\n| ... with pretraining's own dense heads (before `refine-dense`): hit / AUC | "
                 f"{pct(j['point_to_pixel_hit'])} / {j['pixel_to_point_auc']:.3f} | |")
    return rows


def write_model_card(results: dict, out: Path, checkpoint: Path) -> None:
    t, z = figures(results["trained"]), figures(results["random"])
    joint = results["trained"].get("correspondence_joint")
    j = joint.get("summary", joint) if joint else None
    dr = results.get("dense_refine")
    heads = (dr or {}).get("heads", {})
    pre = results["pretrain"]
    ep = pre["epochs"]
    val = [(e["epoch"] + 1, e["val_acc"]) for e in ep if e.get("val_acc") is not None]
    vals = [a for _, a in val]
    n_val = int(pre.get("val_objects") or 96)
    half_ci = 1.96 * np.sqrt(0.9 * 0.1 / n_val)
    early, late = float(np.mean(vals[:len(vals) // 2])), float(np.mean(vals[len(vals) // 2:]))
    minutes = (pre["seconds"] or 0) / 60
    size_mb = checkpoint.stat().st_size / 1e6 if checkpoint.is_file() else float("nan")
    first, last = ep[0], ep[-1]
    goals = [
        *_svm_goals(t, z),
        _fewshot_goal(t, z),
        *_fewshot_scans_goal(t, z),
        ("cross-modal retrieval top-1 >= 20 x chance", t["p2i"]["top1"] >= 20 * t["chance"]["top1"]),
        ("part segmentation, shipped head: instance mIoU >= 0.75", t["partseg"] >= 0.75),
        ("UMAP silhouette: pretrained >= random + 0.15", t["sil"] >= z["sil"] + 0.15),
        (f"validation SVM rises over the epochs by more than its noise ({100 * val[0][1]:.1f} % at epoch "
         f"{val[0][0]}, {100 * val[-1][1]:.1f} % at the end, mean of the last half {100 * late:.1f} % against "
         f"{100 * early:.1f} %; {n_val} validation objects: +-{100 * half_ci:.0f} points)",
         late - early > half_ci),
        *_heldout_goal(results),
        _pretrain_goal(pre, results.get("pretrain_rerun"), t["svm_raw"]),
        ("checkpoint <= 50 MB", size_mb <= 50),
        ("point -> pixel hit >= 50 % (issue 11)", t["hit"] >= 0.5),
        *_dense_check_goal(results),
        ("pixel -> points AUC >= 0.9 (issue 11)", t["auc"] >= 0.9),
        *_ablation_goal(results.get("no_dense_ablation")),
        *_sensor_goals(results),
    ]
    cats = sorted(set(t["per_category"]) | set(z["per_category"]))
    per_cat = ", ".join(f"{c} {100 * t['per_category'].get(c, {}).get('miou', float('nan')):.0f} / "
                        f"{100 * z['per_category'].get(c, {}).get('miou', float('nan')):.0f}" for c in cats)
    lines = f"""# Model card: `assets/demo_checkpoint.pt`

The checkpoint the explorer loads when you have not opened one of your own. It exists so that
segmentation, 3D-2D correspondence, retrieval and the embedding map show something real on a
machine with no dataset and no GPU, and so that the difference between a pretrained and a random
model is visible. **It is not a substitute for a CrossPoint model trained on ShapeNet**: it has only
seen the embedded demo dataset (24 procedurally generated shape families, `crosspoint make-demo`).

This card is generated by `scripts/model_card.py` from `assets/demo_results.json`, which
`scripts/make_demo_checkpoint.py` wrote: every figure below is the measured one.

## What is in it

One CrossPoint Explorer bundle (`torch.load(..., weights_only=True)`; tensors and plain types only),
stored in float16 ({size_mb:.1f} MB); the loaders cast it back to float32.

| part | architecture | trained how |
|---|---|---|
| `point_encoder` | DGCNN, k = 20, emb_dims 1024 (2048-d feature), projection to 256 | CrossPoint pretraining |
| `image_encoder` | ResNet-18, projection to 256, {128}x{128} input | CrossPoint pretraining (jointly) |
| `dense_heads` | per-point and per-pixel (stride-{heads.get('stride', 8)}{_context(heads.get('context', 0), ", ")}) embeddings, {heads.get('dim', 64)}-d{"; their own ResNet " + heads["image_branch"].replace("+", " and ") + " (a fitted copy of the image encoder's)" if heads.get("image_branch", "none") != "none" else ""} | {"refitted on the frozen encoders (`crosspoint refine-dense`) after the joint dense term" if dr else "the dense point-pixel term (jointly)"} |
{_seg_table_rows(results)}

## How it was made

With the project's own commands, scripted in `scripts/make_demo_checkpoint.py`, on
{pre['machine']} (no GPU):

```bash
crosspoint make-demo runs/demo-hard-seed0 --seed 0     # the training data (= the explorer's demo)
crosspoint make-demo runs/demo-hard-seed1 --seed 1     # held out: never seen in training
crosspoint pretrain --config {pre['config']} --set data.root=runs/demo-hard-seed0 --out runs/cpu-demo-hard   # {minutes:.1f} min
python scripts/make_demo_checkpoint.py --skip-pretrain  # heads, every evaluation, this card
```

- Pretraining: {len(ep)} epochs on the seed-0 hard demo (24 classes x 36 objects, 10 % held out for
  validation), batch 24, Adam lr 1e-3 with cosine decay, the paper's augmentations and both NT-Xent
  losses (temperature 0.1), plus the dense point-pixel term (64 visible points per view,
  `crosspoint.models.dense`; not in the paper, off in `configs/paper.yaml`). Loss {first['loss']:.2f} ->
  {last['loss']:.2f}.
- The final epoch is shipped. Validation linear-SVM accuracy per validation epoch:
  {", ".join(f"{e}: {100 * a:.1f}%" for e, a in val)} (plot: `docs/images/demo-val-curve.svg`).{_heldout_text(results)}{_pretrain_rerun_text(pre, results.get("pretrain_rerun"), t["svm_raw"])}
{_seg_text(results)}{_refine_text(dr, j).rstrip()}

![validation curve](../docs/images/demo-val-curve.svg)

## What it reaches, against random weights

Everything on the **held-out seed-1 demo**; "random" is a seeded randomly initialised encoder of the
same architecture, evaluated by the same command (`--checkpoint random`).

| protocol | pretrained (this checkpoint) | random weights |
|---|---|---|
{_svm_rows(t, z)}
| few-shot 5-way 10-shot (`eval fewshot`, 10 episodes) | **{t['fewshot']:.1f} +- {t['fewshot_std']:.1f}%** | {z['fewshot']:.1f} +- {z['fewshot_std']:.1f}% |{_fewshot_100_row(t, z)}{_fewshot_100_row(t, z, "fewshot_scans_accs", "single-view partial scans (`--data .../scans`), ")}
| retrieval point cloud -> its view, top-1 / top-5 ({t['n_retrieval']} candidates; chance {pct(t['chance']['top1'], 2)} / {pct(t['chance']['top5'], 2)}) | **{pct(t['p2i']['top1'])} / {pct(t['p2i']['top5'])}** | {pct(z['p2i']['top1'])} / {pct(z['p2i']['top5'])} |
| retrieval view -> point cloud, top-1 / top-5 | **{pct(t['i2p']['top1'])} / {pct(t['i2p']['top5'])}** | {pct(z['i2p']['top1'])} / {pct(z['i2p']['top5'])} |
| part segmentation, {"encoder fine-tuned with the head" if results.get("seg_backbone") == "finetune" else "frozen encoder + head"}, instance / class mIoU ({t['partseg_shapes']} test shapes) | **{pct(t['partseg'])} / {pct(t['partseg_class'])}** | {pct(z['partseg'])} / {pct(z['partseg_class'])} |{_seg_row(t, z)}
| UMAP of the held-out demo: class silhouette in 2-D / 5-NN accuracy in 2-D | **{t['sil']:.2f} / {pct(t['knn'])}** | {z['sil']:.2f} / {pct(z['knn'])} |
| point -> pixel hit, arg-max within 8 px at 224 (`eval correspondence`, {t['corr_objects']} objects; chance {pct(t['hit_chance'])}) | **{pct(t['hit'])}** | {pct(z['hit'])} |{_miss_rows(t, z)}
| pixel -> points AUC (chance 0.5) | **{t['auc']:.3f}** | {z['auc']:.3f} |{_joint_rows(j, results['trained'].get('correspondence_previous_heads'), results['trained'].get('correspondence_history'))}
| similarity drop when a part is removed, 3D / 2D (a random blob of the same size) | {t['part_drop_3d']:.3f} ({t['part_blob_3d']:.3f}) / {t['part_drop_2d']:.3f} ({t['part_blob_2d']:.3f}) | {z['part_drop_3d']:.3f} ({z['part_blob_3d']:.3f}) / {z['part_drop_2d']:.3f} ({z['part_blob_2d']:.3f}) |
| most important part agrees in 3D and 2D (chance {pct(t['part_agree_chance'])}) | {pct(t['part_agree'])} | {pct(z['part_agree'])} |

Part segmentation per category (instance mIoU, pretrained / random): {per_cat}.
{_svm_note(t, z)}{_label_text(results)}{_sensor_text(results)}{_frontier_text(results)}{_levers_text(results)}""" + _category_text(results.get("category")) + _ablation_text(results.get("no_dense_ablation")) + """

## The goals of issue 12 (and the dense goals of issue 11), checked

| goal | |
|---|---|
""" + "\n".join(f"| {g} | {_check(ok)} |" for g, ok in goals) + """

## Limits

- Trained on synthetic objects only: on real scans and ShapeNet meshes its segmentation and
  heatmaps are illustrations of the method, not measurements. Load an official CrossPoint
  checkpoint or one of your runs for real work.
- 1024 points and 128-pixel views (the paper: 2048 points, 224 pixels, ResNet-50 by default), and a
  CPU budget of 40 minutes: far fewer steps than the paper's 100 epochs on ShapeNet.
- The full record (every setting, every fold, every epoch) is `assets/demo_results.json`.
"""
    out.write_text(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    src = Path(argv[0]) if argv else REPO / "assets" / "demo_results.json"
    out = Path(argv[1]) if len(argv) > 1 else REPO / "assets" / "MODEL_CARD.md"
    write_model_card(json.loads(src.read_text()), out, out.parent / "demo_checkpoint.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
