"""What the app says in words, computed from an Analysis and the flags: the weights' description, the
predictions table, what reviewers said and how far they agree (Markdown, every outside text escaped)."""
from __future__ import annotations

from mrnet.app.payload import analysed_planes
from mrnet.app.text import markdown_text
from mrnet.core.analysis import Analysis
from mrnet.core.config import DISCLAIMER, TASK_TITLES
from mrnet.core.weights import Weights
from mrnet.sets.flags import agreement_sentence


def weights_markdown(weights: Weights, notice: str = "") -> str:
    """Where the weights came from, what they were trained on, and what they are for."""
    src, prov = weights.source, weights.config.provenance
    if src.get("kind") == "hub":
        where = (f"Hub repo {markdown_text(src['repo'])} at {markdown_text(src['revision'])} "
                 f"(commit {markdown_text(src['commit'][:12])})")
    else:
        where = f"{'bundled' if src.get('kind') == 'bundled' else 'local'} folder {markdown_text(src.get('folder'))}"
    # a Hub repo's config.json is someone else's text too
    lines = [f"**Weights:** {where}. **Trained on:** {markdown_text(str(prov.get('trained_on', 'not stated')).rstrip('.'))}.",
             f"**Intended use:** {markdown_text(prov.get('intended_use', 'not stated'))}"]
    if notice:
        lines.append(f"**Notice:** {markdown_text(notice)}")
    return "\n\n".join(lines)


def percent(p: float) -> str:
    return f"{100 * p:.1f} %"


def predictions_markdown(analysis: Analysis, truth: dict | None = None) -> str:
    """One row per task: fused probability, then each plane's. Independent probabilities, not a softmax."""
    planes = analysed_planes(analysis)
    head = (["Task", "Probability (fused)"] + [p.capitalize() for p in planes] + ["Decisive plane"]
            + (["Ground truth"] if truth else []))
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, result in analysis.tasks.items():
        cells = [TASK_TITLES.get(task, task), f"**{percent(result.probability)}**"
                 + (" ¹" if result.fusion == "mean-logit" else "")]
        cells += [percent(result.planes[p].probability) if p in result.planes else "—" for p in planes]
        cells.append(result.decisive_plane)
        if truth:
            cells.append({1: "positive", 0: "negative"}.get(truth.get(task, -1), "—"))
        rows.append("| " + " | ".join(cells) + " |")
    sources = sorted({src.split("[")[0] for src in analysis.exam.sources.values()})
    notes = [f"Exam: {markdown_text(', '.join(sources))}.", "Each task is an independent probability (they do not add up to 100 %). "
             "The fused probability is a logistic regression over the plane logits, with the weights' own "
             "coefficients; it can be far from each plane's probability. The decisive plane adds the most to "
             "the fused logit."]
    if any(r.fusion == "mean-logit" for r in analysis.tasks.values()):
        notes.append("¹ Planes are missing or the weights carry no fusion coefficients: fused as the mean of the "
                     "plane logits.")
    missing = analysis.exam.describe()["missing_planes"]
    if missing:
        notes.append(f"Missing plane(s): {', '.join(missing)} — predictions use the planes present.")
    notes += [f"Input: {markdown_text(n)}" for n in analysis.exam.notes]
    warnings = "".join(f"> ⚠️ **{markdown_text(text)}**\n\n" for text in analysis.warnings)
    return warnings + "\n".join(rows) + "\n\n" + "\n\n".join(notes) + f"\n\n*{DISCLAIMER}*"


def flags_summary_markdown(rows: list[dict], names: dict[str, str]) -> str:
    """What reviewers said (flags.FlagStore.summary) as a table: per weights (named where known), task and
    method, the share judged on the lesion and how often the verdicts agree with the pointing game."""
    if not rows:
        return ""
    lines = ["**What reviewers said** (Wilson 95 % intervals; the pointing game is known on sets with lesion "
             "masks: an *on* verdict agrees when the map's maximum lies within 15 px of the lesion, an *off* "
             "verdict when it does not)", "",
             "| weights | task | method | flags | on / off / unsure | judged on the lesion | agrees with the pointing game |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        agree = (f"{r['agree']} of {r['pointing_n']}: {percent(r['agreement'])} "
                 f"[{percent(r['agreement_low'])}, {percent(r['agreement_high'])}]" if r["pointing_n"] else "—")
        lines.append(f"| {markdown_text(names.get(r['weights'], r['weights']))} | {markdown_text(r['task'])} | "
                     f"{markdown_text(r['method'])} | {r['n']} | {r['on']} / {r['off']} / {r['unsure']} | "
                     f"{percent(r['share_on'])} [{percent(r['share_on_low'])}, {percent(r['share_on_high'])}] | {agree} |")
    return "\n".join(lines)


def marks_markdown(rows: list[dict], names: dict[str, str]) -> str:
    """The pointing game against reviewers' lesion marks (flags.FlagStore.marks): per weights, method and plane,
    how often the judged map's maximum lay within 15 px of the mark, and on sets with masks how often the marks
    touched the lesion."""
    if not rows:
        return ""
    lines = [f"| {markdown_text(names.get(r['weights'], r['weights']))} | {markdown_text(r['method'])} | "
             f"{markdown_text(r['plane'])} | {r['n']} | {r['hits']} of {r['n']}: {percent(r['share'])} "
             f"[{percent(r['low'])}, {percent(r['high'])}] | "
             + (f"{r['on_lesion']} of {r['with_mask']}" if r["with_mask"] else "—") + " |" for r in rows]
    return ("\n\n**The pointing game against reviewers' marks** (the judged map's maximum within 15 px of the "
            "reviewer's point or box; Wilson 95 % intervals; on sets with lesion masks, how many marks touch the "
            "lesion)\n\n| weights | method | plane | marks | map on the mark | marks on the lesion |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(lines))


def agreement_markdown(rows: list[dict], names: dict[str, str]) -> str:
    """How far reviewers agree (flags.FlagStore.agreement), where more than one reviewer flagged: each one's
    counts, Cohen's kappa per pair and Fleiss' kappa, with 95 % bootstrap intervals and the shared views."""
    lines = []
    for r in rows:
        if len(r["reviewers"]) < 2:
            continue
        counts = "; ".join(f"{markdown_text(name)}: {c['on']} / {c['off']} / {c['unsure']}"
                           for name, c in r["reviewers"].items())
        pairs = "; ".join(f"{markdown_text(p['a'])} & {markdown_text(p['b'])}: {agreement_sentence(p)}"
                          for p in r["pairs"])
        lines.append(f"| {markdown_text(names.get(r['weights'], r['weights']))} | {markdown_text(r['task'])} | "
                     f"{markdown_text(r['method'])} | {counts} | {pairs} | {agreement_sentence(r['fleiss'])} |")
    if not lines:
        return ""
    return ("\n\n**How far reviewers agree** (on / off / unsure per reviewer; Cohen's kappa per pair on the views "
            "both judged, Fleiss' kappa on the views all judged; 95 % bootstrap intervals)\n\n"
            "| weights | task | method | reviewers | Cohen's kappa | Fleiss' kappa |\n|---|---|---|---|---|---|\n"
            + "\n".join(lines))
