"""What every benchmark script does the same way: pick the variants, run each at each size, print and save."""
from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Iterable

from benchlib.common import hypergen_available, save_results
from benchlib.fanoutrun import log


def available_variants(variants: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The variants to run, without the hypergen_ws ones when the package cannot be used (and why)."""
    chosen = list(variants)
    skipped: dict[str, str] = {}
    if any(v.startswith("hypergen") for v in chosen):
        ok, why = hypergen_available()
        if not ok:
            for name in [v for v in chosen if v.startswith("hypergen")]:
                chosen.remove(name)
                skipped[name] = why
            log(f"hypergen variants skipped: {why}")
    return chosen, skipped


async def run_matrix(sizes: Iterable[int], variants: list[str],
                     one_run: Callable[[str, int, argparse.Namespace], Awaitable[dict]], args: argparse.Namespace,
                     describe: Callable[[int, str], str]) -> list[dict]:
    """Run every variant at every size; a failed run is recorded with its error and the others go on."""
    runs = []
    for size in sizes:
        for variant in variants:
            log(describe(size, variant))
            try:
                runs.append(await one_run(variant, size, args))
            except Exception as exc:  # noqa: BLE001 - record the failure and go on with the next run
                log(f"  {variant}: FAILED: {exc}")
                runs.append({"variant": variant, "clients": size, "error": str(exc)[-2000:]})
    return runs


def cli(parse_args: Callable[[], argparse.Namespace], main: Callable[[argparse.Namespace], Awaitable[dict]],
        report: Callable[[dict], str]) -> None:
    """Parse the arguments, run, print the report and save the results unless --no-save."""
    arguments = parse_args()
    outcome = asyncio.run(main(arguments))
    print(report(outcome))
    if not arguments.no_save:
        print(f"\nresults: {save_results(arguments.name, outcome)}")
