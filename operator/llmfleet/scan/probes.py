"""Which garak probes a validation scan may name, and the default set.

Measured with garak 0.17.1 installed without torch (hack/install-garak.sh: garak and the
dependencies its string detectors need, pinned in hack/garak-requirements.txt), each probe
alone against a loopback model with outbound connections recorded: PROVEN_PROBES ran to a
complete report with evaluations and connected nowhere; REFUSED_PROBES did not (they need
torch or a Hugging Face model, download data, or need another model or service), and garak
exits 0 for most of them, without a report or with an aborted one.

A spec entry is a module (`promptinject`: garak picks the module's *active* probes,
ACTIVE_PROBES) or one probe (`dan.Dan_11_0`: also an inactive one). A module is allowed only
when every active probe of it is proven: one probe without a loadable detector aborts the
whole run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Prompt injection (the model repeats the attacker's rogue string), one classic jailbreak and
# one encoded injection: five probes, string detectors only, 41 prompts at the default cap and
# about 3 s against a loopback model. A model that repeats its prompt fails the first two;
# one that refuses passes all.
DEFAULT_PROBES: tuple[str, ...] = ("promptinject", "dan.Dan_11_0", "encoding.InjectBase64")
# Prompts per probe (garak's soft_probe_prompt_cap).
DEFAULT_PROMPT_CAP = 10
# The detector each default probe module is judged by: the probes' primary detectors (the
# config turns the extended ones off). `encoding.DecodeApprox` (extended) counts a plain
# refusal as a hit and `mitigation.MitigationBypass` (extended for dan) misses refusals it has
# no phrase for, such as "I'm sorry, I can't help with that."
DEFAULT_DETECTORS: Mapping[str, str] = {
    "promptinject": "promptinject.AttackRogueString",
    "dan": "dan.DAN",
    "encoding": "encoding.DecodeMatch",
}

ENTRY = re.compile(r"^[a-z][a-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$")

# Ran to a complete report with evaluations, without a connection, on the minimal install.
# Probes whose primary detector is mitigation.MitigationBypass (dan.DanInTheWild, doctor,
# donotanswer, dra, grandma.Substances, smuggling, suffix.GCGCached, tap.TAPCached, ...) fail
# refusals it has no phrase for; the ...Full probes and others ignore the prompt cap
# (donotanswer, snowball, the Full variants: hundreds to thousands of prompts).
_PROVEN: Mapping[str, tuple[str, ...]] = {
    "adaptive_attacks": ("AdaptiveAttacks",),
    "ansiescape": (
        "AnsiEscaped",
        "AnsiRaw",
    ),
    "apikey": (
        "CompleteKey",
        "GetKey",
    ),
    "av_spam_scanning": (
        "EICAR",
        "GTUBE",
        "GTphish",
    ),
    "badchars": ("BadCharacters",),
    "continuation": (
        "ContinueSlursReclaimedSlurs",
        "ContinueSlursReclaimedSlursFull",
    ),
    "dan": (
        "Ablation_Dan_11_0",
        "AntiDAN",
        "AutoDANCached",
        "ChatGPT_Developer_Mode_RANTI",
        "ChatGPT_Developer_Mode_v2",
        "ChatGPT_Image_Markdown",
        "DAN_Jailbreak",
        "DUDE",
        "DanInTheWild",
        "DanInTheWildFull",
        "Dan_10_0",
        "Dan_11_0",
        "Dan_6_0",
        "Dan_6_2",
        "Dan_7_0",
        "Dan_8_0",
        "Dan_9_0",
        "STAN",
    ),
    "doctor": (
        "Bypass",
        "BypassLeet",
        "Puppetry",
    ),
    "donotanswer": (
        "DiscriminationExclusionToxicityHatefulOffensive",
        "HumanChatbox",
        "InformationHazard",
        "MaliciousUses",
        "MisinformationHarms",
    ),
    "dra": (
        "DRA",
        "DRAAdvanced",
    ),
    "encoding": (
        "InjectAscii85",
        "InjectAtbash",
        "InjectBase16",
        "InjectBase2048",
        "InjectBase32",
        "InjectBase64",
        "InjectBraille",
        "InjectEcoji",
        "InjectHex",
        "InjectLeet",
        "InjectMime",
        "InjectMorse",
        "InjectNato",
        "InjectQP",
        "InjectROT13",
        "InjectSneakyBits",
        "InjectUU",
        "InjectUnicodeTagChars",
        "InjectUnicodeVariantSelectors",
        "InjectZalgo",
    ),
    "exploitation": (
        "JinjaTemplatePythonInjection",
        "SQLInjectionEcho",
        "SQLInjectionSystem",
    ),
    "glitch": (
        "Glitch",
        "GlitchFull",
    ),
    "goodside": (
        "Davidjl",
        "Tag",
        "ThreatenJSON",
        "WhoIsRiley",
    ),
    "grandma": (
        "Slurs",
        "Substances",
        "Win10",
        "Win11",
    ),
    "latentinjection": (
        "LatentInjectionFactSnippetEiffel",
        "LatentInjectionFactSnippetEiffelFull",
        "LatentInjectionFactSnippetLegal",
        "LatentInjectionFactSnippetLegalFull",
        "LatentInjectionReport",
        "LatentInjectionReportFull",
        "LatentInjectionResume",
        "LatentInjectionResumeFull",
        "LatentInjectionTranslationEnFr",
        "LatentInjectionTranslationEnFrFull",
        "LatentInjectionTranslationEnZh",
        "LatentInjectionTranslationEnZhFull",
        "LatentWhois",
        "LatentWhoisSnippet",
        "LatentWhoisSnippetFull",
    ),
    "leakreplay": (
        "GuardianCloze",
        "GuardianClozeFull",
        "GuardianComplete",
        "GuardianCompleteFull",
        "LiteratureCloze",
        "LiteratureClozeFull",
        "LiteratureComplete",
        "LiteratureCompleteFull",
        "NYTCloze",
        "NYTClozeFull",
        "NYTComplete",
        "NYTCompleteFull",
        "PotterCloze",
        "PotterClozeFull",
        "PotterComplete",
        "PotterCompleteFull",
    ),
    "lmrc": (
        "Anthropomorphisation",
        "Deadnaming",
        "Profanity",
        "QuackMedicine",
        "SexualContent",
        "Sexualisation",
        "SlurUsage",
    ),
    "malwaregen": (
        "Evasion",
        "Payload",
        "SubFunctions",
        "TopLevel",
    ),
    "phrasing": (
        "FutureTense",
        "FutureTenseFull",
        "PastTense",
        "PastTenseFull",
    ),
    "promptinject": (
        "HijackHateHumans",
        "HijackHateHumansFull",
        "HijackKillHumans",
        "HijackKillHumansFull",
        "HijackLongPrompt",
        "HijackLongPromptFull",
    ),
    "propile": (
        "PIILeakTriplet",
        "PIILeakTwin",
    ),
    "smuggling": (
        "FunctionMasking",
        "HomoglyphObfuscation",
        "HypotheticalResponse",
    ),
    "snowball": (
        "GraphConnectivity",
        "GraphConnectivityFull",
        "Primes",
        "PrimesFull",
        "Senators",
        "SenatorsFull",
    ),
    "suffix": ("GCGCached",),
    "tap": ("TAPCached",),
    "web_injection": (
        "ColabAIDataLeakage",
        "MarkdownImageExfil",
        "MarkdownURIImageExfilExtended",
        "MarkdownURINonImageExfilExtended",
        "MarkdownXSS",
        "PlaygroundMarkdownExfil",
        "StringAssemblyDataExfil",
        "TaskXSS",
    ),
}
PROVEN_PROBES: frozenset[str] = frozenset(f"{m}.{c}" for m, cs in _PROVEN.items() for c in cs)

# What a module entry selects: its active probes.
ACTIVE_PROBES: Mapping[str, tuple[str, ...]] = {
    "adaptive_attacks": ("AdaptiveAttacks",),
    "ansiescape": (
        "AnsiEscaped",
        "AnsiRaw",
    ),
    "apikey": (
        "CompleteKey",
        "GetKey",
    ),
    "atkgen": ("Tox",),
    "badchars": ("BadCharacters",),
    "continuation": ("ContinueSlursReclaimedSlurs",),
    "dan": (
        "Ablation_Dan_11_0",
        "AutoDANCached",
        "DanInTheWild",
    ),
    "divergence": (
        "Repeat",
        "RepeatedToken",
    ),
    "dra": ("DRA",),
    "encoding": (
        "InjectAscii85",
        "InjectAtbash",
        "InjectBase16",
        "InjectBase2048",
        "InjectBase32",
        "InjectBase64",
        "InjectBraille",
        "InjectEcoji",
        "InjectHex",
        "InjectMorse",
        "InjectNato",
        "InjectROT13",
        "InjectUU",
        "InjectUnicodeTagChars",
        "InjectZalgo",
    ),
    "exploitation": (
        "JinjaTemplatePythonInjection",
        "SQLInjectionEcho",
    ),
    "goodside": (
        "Tag",
        "ThreatenJSON",
        "WhoIsRiley",
    ),
    "grandma": (
        "Slurs",
        "Substances",
        "Win10",
        "Win11",
    ),
    "latentinjection": (
        "LatentInjectionFactSnippetEiffel",
        "LatentInjectionFactSnippetLegal",
        "LatentInjectionReport",
        "LatentInjectionResume",
        "LatentInjectionTranslationEnFr",
        "LatentInjectionTranslationEnZh",
        "LatentJailbreak",
        "LatentWhois",
        "LatentWhoisSnippet",
    ),
    "leakreplay": (
        "GuardianCloze",
        "GuardianComplete",
        "LiteratureCloze",
        "LiteratureComplete",
        "NYTCloze",
        "NYTComplete",
        "PotterCloze",
        "PotterComplete",
    ),
    "lmrc": (
        "Bullying",
        "Deadnaming",
        "QuackMedicine",
        "SexualContent",
        "Sexualisation",
        "SlurUsage",
    ),
    "malwaregen": (
        "Evasion",
        "Payload",
        "SubFunctions",
        "TopLevel",
    ),
    "misleading": ("FalseAssertion",),
    "packagehallucination": (
        "Dart",
        "JavaScript",
        "Perl",
        "Python",
        "RakuLand",
        "Ruby",
        "Rust",
    ),
    "phrasing": (
        "FutureTense",
        "PastTense",
    ),
    "promptinject": (
        "HijackHateHumans",
        "HijackKillHumans",
        "HijackLongPrompt",
    ),
    "realtoxicityprompts": ("RTPBlank",),
    "sata": ("MLM",),
    "snowball": ("GraphConnectivity",),
    "suffix": ("GCGCached",),
    "sysprompt_extraction": ("SystemPromptExtraction",),
    "tap": ("TAPCached",),
    "topic": ("WordnetControversial",),
    "web_injection": (
        "ColabAIDataLeakage",
        "MarkdownImageExfil",
        "MarkdownURIImageExfilExtended",
        "MarkdownURINonImageExfilExtended",
        "MarkdownXSS",
        "PlaygroundMarkdownExfil",
        "StringAssemblyDataExfil",
        "TaskXSS",
    ),
}

_TORCH = "needs torch, which the scanner image leaves out"
_CLASSIFIER = "is judged by a Hugging Face classifier model (transformers and torch, a download)"
_HF_DATA = "loads a Hugging Face data set at run time (a download)"
_NOT_PROBES = "is one of garak's base classes, not a probe"
REFUSED_PROBES: Mapping[str, str] = {
    "agent_breaker.AgentBreaker": "needs an NVIDIA NIM API key and an agent to attack",
    "ansiescape.AnsiRawTokenizerHF": "needs a Hugging Face tokenizer (a download)",
    "atkgen.Tox": "needs an attacker model and a toxicity classifier (Hugging Face downloads)",
    "audio.AudioAchillesHeel": "needs audio libraries (soundfile, librosa) and audio data",
    "base.IntentProbe": _NOT_PROBES,
    "base.IterativeProbe": _NOT_PROBES,
    "base.Probe": _NOT_PROBES,
    "base.TreeSearchProbe": _NOT_PROBES,
    "dan.AutoDAN": _TORCH,
    "divergence.Repeat": "needs tiktoken, which downloads its encodings",
    "divergence.RepeatExtended": "needs tiktoken, which downloads its encodings",
    "divergence.RepeatedToken": "needs tiktoken, which downloads its encodings",
    "fileformats.HF_Files": "inspects a Hugging Face model's files (huggingface_hub, downloads)",
    "fitd.FITD": "needs an LLM judge (judge.RefusalOnlyAdversarial) besides the target",
    "goat.GOATAttack": "needs an attacker model and " + _HF_DATA,
    "grandma.GrandmaIntent": "has a detector that needs libmagic (python-magic)",
    "latentinjection.LatentJailbreak": _CLASSIFIER,
    "latentinjection.LatentJailbreakFull": _CLASSIFIER,
    "lmrc.Bullying": _CLASSIFIER,
    "misleading.FalseAssertion": _CLASSIFIER,
    "packagehallucination.Dart": "downloads package lists (" + _HF_DATA + ")",
    "packagehallucination.JavaScript": "downloads package lists (" + _HF_DATA + ")",
    "packagehallucination.Perl": "downloads package lists (" + _HF_DATA + ")",
    "packagehallucination.Python": "downloads package lists (" + _HF_DATA + ")",
    "packagehallucination.RakuLand": "downloads package lists (" + _HF_DATA + ")",
    "packagehallucination.Ruby": "downloads package lists (" + _HF_DATA + ")",
    "packagehallucination.Rust": "downloads package lists (" + _HF_DATA + ")",
    "propile.PIILeakQuadruplet": "has no prompts without a PII data set of one's own",
    "propile.PIILeakUnstructured": "has no prompts without a PII data set of one's own",
    "realtoxicityprompts.RTPBlank": _CLASSIFIER,
    "realtoxicityprompts.RTPFlirtation": _CLASSIFIER,
    "realtoxicityprompts.RTPIdentity_Attack": _CLASSIFIER,
    "realtoxicityprompts.RTPInsult": _CLASSIFIER,
    "realtoxicityprompts.RTPProfanity": _CLASSIFIER,
    "realtoxicityprompts.RTPSevere_Toxicity": _CLASSIFIER,
    "realtoxicityprompts.RTPSexually_Explicit": _CLASSIFIER,
    "realtoxicityprompts.RTPThreat": _CLASSIFIER,
    "sata.MLM": "downloads nltk data",
    "suffix.BEAST": _TORCH,
    "suffix.GCG": _TORCH,
    "sysprompt_extraction.SystemPromptExtraction": _HF_DATA,
    "tap.PAIR": _TORCH,
    "tap.TAP": _TORCH,
    "test.Blank": "is one of garak's self-tests, not a scan of the model",
    "test.Test": "is one of garak's self-tests, not a scan of the model",
    "topic.WordnetAllowedWords": "downloads WordNet (wn)",
    "topic.WordnetBlockedWords": "downloads WordNet (wn)",
    "topic.WordnetControversial": "downloads WordNet (wn)",
    "visual_jailbreak.FigStep": "downloads its images at run time",
    "visual_jailbreak.FigStepFull": "downloads its images at run time",
}

MODULES: frozenset[str] = frozenset(
    name.split(".", 1)[0] for name in (*PROVEN_PROBES, *REFUSED_PROBES)
)


def probe_problem(entry: str) -> str | None:
    """Why a spec entry (`module` or `module.Probe`) cannot be scanned with, or None."""
    if entry.startswith("probes."):
        return f"{entry!r}: name probes without the 'probes.' prefix"
    if not ENTRY.match(entry):
        return f"{entry!r} is not a garak probe: write a module (promptinject) or module.Probe"
    module, _, probe = entry.partition(".")
    if module not in MODULES:
        return f"{entry!r}: garak has no probe module {module!r}"
    if probe:
        if entry in REFUSED_PROBES:
            return f"{entry} {REFUSED_PROBES[entry]}"
        if entry not in PROVEN_PROBES:
            return f"{entry!r}: garak's {module} module has no probe {probe!r}"
        return None
    active = ACTIVE_PROBES.get(module, ())
    if not active:
        example = sorted(p for p in PROVEN_PROBES if p.startswith(module + "."))
        hint = f", for example {example[0]}" if example else ""
        return f"{module} has no active probes: name one as {module}.Probe{hint}"
    for name in active:
        refused = f"{module}.{name}"
        if refused in REFUSED_PROBES:
            return (
                f"{module} selects {refused}, which {REFUSED_PROBES[refused]}; "
                f"name the module's other probes instead"
            )
    return None
