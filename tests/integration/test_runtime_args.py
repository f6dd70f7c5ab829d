"""The model-server command lines the operator renders, checked against the servers' sources.

vLLM and ollama need GPUs (or gigabytes of CUDA libraries) to run, so their command lines are
checked against the code that parses them, fetched by hack/fetch-runtime-sources.sh at the
versions of the images the operator deploys:

- vLLM: the image runs `python3 -m vllm.entrypoints.openai.api_server`, whose parser is
  `make_arg_parser` (entrypoints/openai/cli_args.py) plus the engine's arguments
  (engine/arg_utils.py). Every flag rendered must be one of their `add_argument` calls
  (read with `ast`), and take a value when the parser expects one, of its type.
- ollama: the image's ENTRYPOINT is /bin/ollama and its CMD `serve` (Dockerfile); `serve`
  takes no arguments (cmd/cmd.go), so the rendered arguments must be exactly `serve`; every
  OLLAMA_* variable the pod sets must be one the server reads (envconfig/config.go); the
  model is pulled by `ollama pull` and named by `ollama cp`, which take 1 and 2 arguments.

Needs no cluster (llama.cpp runs for real in test_llama_server.py).
"""

from __future__ import annotations

import ast
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmfleet.api import LLMDeploymentSpec
from llmfleet.render import llmdeployment as render
from llmfleet.render.common import Owner
from localfleet.paths import HACK_DIR

FETCH = HACK_DIR / "fetch-runtime-sources.sh"
OWNER = Owner("LLMDeployment", "team-a", "llm", "uid-1")


def sources(runtime: str) -> Path:
    """The runtime's sources, fetched (or found in the cache) by hack/fetch-runtime-sources.sh."""
    result = subprocess.run(
        ["bash", str(FETCH)], capture_output=True, text=True, check=False, timeout=900
    )
    if result.returncode != 0:
        pytest.fail(
            f"hack/fetch-runtime-sources.sh could not fetch the model servers' sources (make "
            f"runtime-sources):\n{result.stderr[-2000:]}",
            pytrace=False,
        )
    printed = subprocess.run(
        ["bash", str(FETCH), "--print-dir", runtime],
        capture_output=True,
        text=True,
        check=True,
    )
    directory = Path(printed.stdout.strip())
    if not (directory / ".complete").is_file():
        pytest.fail(f"{directory} is incomplete; run hack/fetch-runtime-sources.sh", pytrace=False)
    return directory


def pod(fields: dict[str, Any]) -> dict[str, Any]:
    spec = LLMDeploymentSpec.model_validate({"placement": {"location": "onprem"}} | fields)
    deployment = render.deployment(spec, OWNER, "onprem", in_owner_cluster=True)
    return deployment["spec"]["template"]["spec"]  # type: ignore[no-any-return]


# --- vLLM ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    takes_value: bool
    type: str | None


def add_argument_calls(path: Path) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
    ]


def options(path: Path) -> dict[str, Option]:
    """Every `--flag` an argparse parser in the file defines, with what it expects."""
    found: dict[str, Option] = {}
    for call in add_argument_calls(path):
        flags = tuple(
            arg.value
            for arg in call.args
            if isinstance(arg, ast.Constant)
            and isinstance(arg.value, str)
            and arg.value.startswith("-")
        )
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        action = keywords.get("action")
        switch = isinstance(action, ast.Constant) and action.value in ("store_true", "store_false")
        kind = keywords.get("type")
        option = Option(flags, not switch, kind.id if isinstance(kind, ast.Name) else None)
        found.update(dict.fromkeys(flags, option))
    return found


def function(path: Path, name: str, owner: str | None = None) -> ast.AST:
    """The function `name` in the file, or the method `name` of the class `owner`."""
    tree: ast.AST = ast.parse(path.read_text(), str(path))
    if owner:
        tree = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == owner)
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


def calls(node: ast.AST) -> set[str]:
    """Dotted names of the calls under `node` (AsyncEngineArgs.add_cli_args, ...)."""
    return {ast.unparse(c.func) for c in ast.walk(node) if isinstance(c, ast.Call)}


@pytest.fixture(scope="module")
def vllm_options() -> dict[str, Option]:
    root = sources("vllm") / "vllm"
    server = ast.parse((root / "entrypoints/openai/api_server.py").read_text())
    main = next(
        node
        for node in server.body
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
    )
    # The entrypoint's parser: make_arg_parser, which adds the engine's arguments.
    assert "make_arg_parser" in calls(main)
    cli_args = root / "entrypoints/openai/cli_args.py"
    assert "AsyncEngineArgs.add_cli_args" in calls(function(cli_args, "make_arg_parser"))
    engine = root / "engine/arg_utils.py"
    assert "EngineArgs.add_cli_args" in calls(function(engine, "add_cli_args", "AsyncEngineArgs"))
    return options(cli_args) | options(engine)


VLLM_SPECS = {
    "hf": {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}},
    "pvc": {"model": {"name": "acme/support-bot", "uri": "pvc://models/support-bot/v3"}},
    "s3": {"model": {"name": "acme/support-bot", "uri": "s3://models/support-bot/v3"}},
    "tensor-parallel": {
        "model": {"name": "meta-llama/Llama-3.1-70B-Instruct"},
        "gpu": {"count": 8, "product": ["NVIDIA-H100-80GB-HBM3"]},
    },
    "served-name": {
        "model": {"name": "chat", "uri": "hf://Qwen/Qwen2.5-7B-Instruct"},
        "gpu": {"count": 0},
        "modelCache": {"claimName": "hf-cache"},
    },
    "user-args": {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
        "args": ["--max-model-len", "8192", "--gpu-memory-utilization=0.9"],
    },
}


@pytest.mark.parametrize("name", VLLM_SPECS)
def test_vllm_parser_defines_every_rendered_flag(
    vllm_options: dict[str, Option], name: str
) -> None:
    (server,) = pod({"runtime": "vllm"} | VLLM_SPECS[name])["containers"]
    assert "command" not in server, "the image's entrypoint is the API server"
    args: list[str] = server["args"]
    assert args, "vLLM needs --model"
    i = 0
    while i < len(args):
        token = args[i]
        assert token.startswith("--"), f"{token!r} at {i} of {args} is not a flag"
        flag, has_inline, inline = token.partition("=")
        assert flag in vllm_options, f"vLLM's parser defines no {flag} (rendered {args})"
        option = vllm_options[flag]
        if not option.takes_value:
            assert not has_inline, f"{flag} takes no value"
            i += 1
            continue
        if has_inline:
            value = inline
            i += 1
        else:
            assert i + 1 < len(args), f"{flag} needs a value"
            value = args[i + 1]
            i += 2
        if option.type == "int":
            assert re.fullmatch(r"-?\d+", value), f"{flag} takes an integer, got {value!r}"
        if option.type == "float":
            float(value)


def test_vllm_renders_the_model_and_its_name(vllm_options: dict[str, Option]) -> None:
    args = pod({"runtime": "vllm"} | VLLM_SPECS["tensor-parallel"])["containers"][0]["args"]
    assert args[args.index("--model") + 1] == "meta-llama/Llama-3.1-70B-Instruct"
    assert args[args.index("--tensor-parallel-size") + 1] == "8"
    assert vllm_options["--tensor-parallel-size"].type == "int"
    assert {"--download-dir", "--served-model-name", "--port"} <= vllm_options.keys()


# --- ollama -------------------------------------------------------------------------------


def dockerfile_final(path: Path, instruction: str) -> list[str]:
    """The last ENTRYPOINT or CMD of the Dockerfile (exec form), the published image's."""
    values = re.findall(rf"^{instruction}\s+(\[.*\])\s*$", path.read_text(), re.MULTILINE)
    assert values, f"no {instruction} in {path}"
    return list(ast.literal_eval(values[-1]))


def cobra_commands(cmd_go: str) -> dict[str, str]:
    """`Use` word -> the `Args` validator of each cobra command in cmd/cmd.go."""
    found = {}
    for block in re.findall(r"&cobra\.Command\{(.*?)\n\t\}", cmd_go, re.DOTALL):
        use = re.search(r'Use:\s+"([^" ]+)', block)
        validator = re.search(r"Args:\s+(cobra\.\w+\(\d*\))", block)
        if use:
            found[use.group(1)] = validator.group(1) if validator else "any"
    return found


@pytest.fixture(scope="module")
def ollama() -> Path:
    return sources("ollama")


OLLAMA_SPECS = {
    "library": {"model": {"name": "llama3.1:8b"}},
    "hf": {"model": {"name": "acme/chat", "uri": "hf://bartowski/Llama-3.2-1B-Instruct-GGUF"}},
    "cpu-pvc-cache": {
        "model": {"name": "qwen2.5:0.5b"},
        "gpu": {"count": 0},
        "modelCache": {"claimName": "ollama-models"},
    },
}


@pytest.mark.parametrize("name", OLLAMA_SPECS)
def test_ollama_runs_serve_under_the_images_entrypoint(ollama: Path, name: str) -> None:
    assert dockerfile_final(ollama / "Dockerfile", "ENTRYPOINT") == ["/bin/ollama"]
    assert dockerfile_final(ollama / "Dockerfile", "CMD") == ["serve"]
    commands = cobra_commands((ollama / "cmd/cmd.go").read_text())
    assert commands["serve"] == "cobra.ExactArgs(0)"
    (server,) = pod({"runtime": "ollama"} | OLLAMA_SPECS[name])["containers"]
    assert "command" not in server, "the image's entrypoint /bin/ollama stays"
    assert server["args"] == ["serve"], "args replace the image's CMD: they must be `serve` only"


@pytest.mark.parametrize("name", OLLAMA_SPECS)
def test_ollama_environment_is_what_the_server_reads(ollama: Path, name: str) -> None:
    config = (ollama / "envconfig/config.go").read_text()
    read = set(re.findall(r'"(OLLAMA_[A-Z_]+)"', config))
    assert {"OLLAMA_MODELS", "OLLAMA_HOST"} <= read
    spec = pod({"runtime": "ollama"} | OLLAMA_SPECS[name])
    for container in [*spec["containers"], *spec.get("initContainers", [])]:
        env = {e["name"]: e.get("value") for e in container["env"]}
        unknown = {n for n in env if n.startswith("OLLAMA_")} - read
        assert not unknown, f"ollama reads no {sorted(unknown)} (envconfig/config.go)"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        # Models go to the cache volume, not to $HOME/.ollama in the pod's scratch space.
        assert env["OLLAMA_MODELS"].startswith(mounts["cache"] + "/"), container["name"]
        assert env["HOME"] == mounts["tmp"]  # serve writes its key pair to $HOME/.ollama
    host = next(e["value"] for e in spec["containers"][0]["env"] if e["name"] == "OLLAMA_HOST")
    assert host.endswith(f":{spec['containers'][0]['ports'][0]['containerPort']}")


@pytest.mark.parametrize("name", OLLAMA_SPECS)
def test_ollama_pulls_the_model_with_commands_ollama_has(ollama: Path, name: str) -> None:
    commands = cobra_commands((ollama / "cmd/cmd.go").read_text())
    (fetch,) = pod({"runtime": "ollama"} | OLLAMA_SPECS[name])["initContainers"]
    shell, dash_c, script, zero, *params = fetch["command"]
    assert (shell, dash_c, zero) == ("/bin/sh", "-c", "pull")
    assert len(params) == 2
    used = {
        match.group(1): len(match.group(2).split())
        for match in re.finditer(r"\bollama (\w+)((?: \"\$\d\")*)", script)
    }
    expected = {"serve": 0, "list": 0, "pull": 1, "cp": 2}
    assert used == expected, script
    for command, count in used.items():
        validator = commands[command]
        assert validator in ("any", f"cobra.ExactArgs({count})"), (command, validator)
