#!/usr/bin/env python3
"""Checks the Dockerfile's structure with Docker's own parser (the `dockerfile` PyPI package wraps
moby/buildkit's parser), since no Docker engine runs in CI:
  - every FROM names its stage; there is a `build` stage (a -devel image) and the last stage is
    `runtime` (a -runtime image), the one `docker build` produces by default;
  - the build stage RUNs tools/test.sh, the same script .ci/run runs;
  - the runtime stage copies what it needs from the build stage, and Fashion-MNIST;
  - the runtime stage's command (ENTRYPOINT + CMD) is `cnnrt train`.
usage: dockerfile_check.py DOCKERFILE   exit 0 pass, 1 fail, 77 skipped (no `dockerfile` module)
"""
import os
import shlex
import sys

SKIP = 77


def command_words(instruction):
    """The words of a CMD/ENTRYPOINT/RUN: exec (JSON) form as is, shell form split like sh would."""
    if instruction.json:
        return list(instruction.value)
    return shlex.split(" ".join(instruction.value))


def check(path):
    import dockerfile

    instructions = dockerfile.parse_file(path)
    failures = []

    stages = []  # (name, image, [instructions])
    for instruction in instructions:
        if instruction.cmd == "FROM":
            words = list(instruction.value)
            if len(words) != 3 or words[1].upper() != "AS":
                failures.append(f"line {instruction.start_line}: FROM without a stage name: "
                                f"{instruction.original}")
                stages.append((None, words[0] if words else "", []))
            else:
                stages.append((words[2], words[0], []))
        elif stages:
            stages[-1][2].append(instruction)
    by_name = {name: (image, body) for name, image, body in stages if name}
    if len(stages) < 2:
        failures.append(f"expected a multi-stage build, found {len(stages)} FROM")
    if "build" not in by_name:
        failures.append(f"no stage named 'build' (stages: {[s[0] for s in stages]})")
    if not stages or stages[-1][0] != "runtime":
        failures.append("the last stage (the default target) is not named 'runtime'")
    if failures:
        return failures

    build_image, build_body = by_name["build"]
    runtime_image, runtime_body = by_name["runtime"]
    if "-devel-" not in build_image:
        failures.append(f"build stage image {build_image} is not a CUDA -devel image")
    if "-runtime-" not in runtime_image:
        failures.append(f"runtime stage image {runtime_image} is not a CUDA -runtime image")

    # The build stage runs the test script CI runs.
    ci_run = os.path.join(os.path.dirname(os.path.abspath(path)), ".ci", "run")
    with open(ci_run, encoding="utf-8") as f:
        if "tools/test.sh" not in f.read():
            failures.append(".ci/run no longer runs tools/test.sh: update this check and the "
                            "Dockerfile together")
    runs = [command_words(i) for i in build_body if i.cmd == "RUN"]
    if not any("tools/test.sh" in words for words in runs):
        failures.append("the build stage has no RUN of tools/test.sh (the script CI runs); "
                        f"its RUNs: {runs}")

    # The runtime stage takes the install and the data set from the build stage.
    copies = [i for i in runtime_body if i.cmd == "COPY"]
    from_build = [c for c in copies if "--from=build" in c.flags]
    if not from_build:
        failures.append("the runtime stage copies nothing from the build stage")
    if not any(any("fashion-mnist" in v for v in c.value) for c in from_build):
        failures.append("the runtime stage does not copy the Fashion-MNIST data")

    # Docker uses the last ENTRYPOINT and the last CMD of the stage.
    entrypoint = [i for i in runtime_body if i.cmd == "ENTRYPOINT"]
    cmd = [i for i in runtime_body if i.cmd == "CMD"]
    words = (command_words(entrypoint[-1]) if entrypoint else []) + (
        command_words(cmd[-1]) if cmd else [])
    if len(words) < 2 or os.path.basename(words[0]) != "cnnrt" or words[1] != "train":
        failures.append(f"the runtime stage's default command is {words}, not `cnnrt train ...`")
    return failures


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import dockerfile  # noqa: F401
    except ImportError as error:
        print(f"dockerfile_check: SKIPPED: python3 cannot import the `dockerfile` package ({error});"
              " install it with `python3 -m pip install dockerfile`")
        return SKIP
    failures = check(sys.argv[1])
    for failure in failures:
        print(f"dockerfile_check: FAIL: {failure}")
    if not failures:
        print(f"dockerfile_check: OK: {sys.argv[1]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
