"""A realistic synthetic interaction log, deterministic for a seed.

Each agent has a home domain it is good at, secondary domains it is fair at, task types it is
strong or weak at, and a few specialities where it beats the home agent (a legal agent reviewing
a finance contract). A task's text is built from its domain's vocabulary and its task type's
verbs, so the text carries what decides which agent is best; success is drawn from the chosen
agent's skill, so a model can learn routing from the log and a random guess cannot.

The log's own "router" picks the domain's home agent 30% of the time and otherwise any agent at
random, so every agent is seen on every kind of task (an always-right router would leave
nothing to learn from).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from agentnn.data.records import InteractionRecord
from agentnn.errors import DataError

# --- skill model: success probability of an agent on a (domain, task type) ----------------
HOME_SKILL = 0.72  # its own domain
SECONDARY_SKILL = 0.42  # a neighbouring domain
OTHER_SKILL = 0.12  # anything else
TYPE_BONUS = 0.12  # added for a strong task type, subtracted for a weak one
SPECIALITY_SKILL = 0.9  # a (domain, task type) where the agent beats the home agent
SKILL_BOUNDS = (0.03, 0.97)

# --- the log's own router and noise ------------------------------------------------------
HOME_ROUTING_SHARE = 0.3  # chance the log's router sends a task to its domain's home agent
FOREIGN_WORD_RATE = 0.15  # chance a task mentions a word from another domain
FEEDBACK_NOISE_RATE = 0.05  # chance a user rates at random
CONFIDENCE_NOISE = 0.12  # std dev around the agent's true skill
MEAN_GAP_MINUTES = 7.0  # between consecutive tasks
LOG_START = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
MAX_AGENTS = 8


@dataclass(frozen=True)
class AgentProfile:
    """What one synthetic agent is good and bad at."""

    name: str
    home_domain: str
    secondary_domains: tuple[str, ...] = ()
    strong_types: tuple[str, ...] = ()
    weak_types: tuple[str, ...] = ()
    specialities: tuple[tuple[str, str], ...] = field(default=())
    """(domain, task type) cells where this agent is the best choice."""


AGENT_PROFILES: tuple[AgentProfile, ...] = (
    AgentProfile("finance_agent", "finance", ("sales",), ("analysis", "report"),
                 ("review", "troubleshooting"), (("sales", "analysis"),)),
    AgentProfile("tech_agent", "tech", ("support",), ("troubleshooting", "analysis"),
                 ("question", "drafting"), (("marketing", "troubleshooting"),)),
    AgentProfile("marketing_agent", "marketing", ("sales",), ("drafting", "report"),
                 ("troubleshooting",), (("sales", "drafting"),)),
    AgentProfile("legal_agent", "legal", ("hr", "finance"), ("review", "drafting"),
                 ("analysis",), (("finance", "review"), ("hr", "review"))),
    AgentProfile("support_agent", "support", ("tech",), ("question", "troubleshooting"),
                 ("report",), (("tech", "question"),)),
    AgentProfile("hr_agent", "hr", ("legal",), ("question", "drafting"), ("review",)),
    AgentProfile("sales_agent", "sales", ("marketing",), ("report", "question"),
                 ("analysis", "drafting")),
    AgentProfile("health_agent", "health", ("hr",), ("question", "review"),
                 ("troubleshooting",)),
)

DOMAIN_WORDS: dict[str, tuple[str, ...]] = {
    "finance": ("quarterly budget", "cash flow", "invoice backlog", "tax return", "balance sheet",
                "expense report", "revenue forecast", "payroll costs", "audit trail",
                "loan covenant"),
    "tech": ("database migration", "api gateway", "kubernetes cluster", "memory leak",
             "deployment pipeline", "ssl certificate", "python service", "server outage",
             "cache layer", "login endpoint"),
    "marketing": ("ad campaign", "brand guidelines", "newsletter", "social media calendar",
                  "landing page copy", "seo keywords", "product launch", "influencer program",
                  "customer persona", "email open rates"),
    "legal": ("supplier contract", "nda", "gdpr compliance", "licence agreement",
              "liability clause", "trademark filing", "terms of service", "litigation risk",
              "data processing agreement", "court deadline"),
    "support": ("customer ticket", "refund request", "password reset", "order status",
                "help centre article", "escalation queue", "complaint", "shipping delay",
                "account lockout", "chat transcript"),
    "hr": ("job description", "onboarding plan", "parental leave policy", "performance review",
           "salary band", "hiring pipeline", "employee survey", "training budget",
           "remote work policy", "exit interview"),
    "sales": ("sales pipeline", "enterprise deal", "pricing proposal", "crm records",
              "lead list", "quota attainment", "renewal forecast", "discount request",
              "territory plan", "prospect call"),
    "health": ("patient intake form", "clinic schedule", "vaccination records",
               "medication guidance", "symptom checker", "insurance claim", "lab results",
               "care plan", "hipaa notice", "telehealth visit"),
}

TASK_TYPE_VERBS: dict[str, tuple[str, ...]] = {
    "analysis": ("analyse", "assess the drivers behind", "evaluate", "break down"),
    "report": ("summarise", "prepare a report on", "compile figures on", "give a status update on"),
    "review": ("review", "audit", "proofread", "check for issues in"),
    "drafting": ("draft", "compose", "write a first version of", "put together wording for"),
    "troubleshooting": ("fix", "troubleshoot", "debug", "find out what broke in"),
    "question": ("explain", "answer a question about", "clarify how we handle", "tell me about"),
}
TASK_TYPES = tuple(TASK_TYPE_VERBS)
BASE_SECONDS = {"analysis": 40.0, "report": 60.0, "review": 30.0, "drafting": 45.0,
                "troubleshooting": 35.0, "question": 10.0}

OPENERS = ("", "please ", "can you ", "urgent: ", "we need to ", "could you ")
CONNECTORS = ("for the", "and the", "including the", "with respect to the", "alongside the")
CLOSERS = ("", " by friday", " for the board", " before the next meeting", " asap",
           " for our team")


def synthesize_interactions(
    n_records: int, n_agents: int = 4, seed: int = 0
) -> list[InteractionRecord]:
    """``n_records`` interaction records among the first ``n_agents`` agent profiles.

    Deterministic for ``(n_records, n_agents, seed)``. Domains are the home domains of the
    chosen agents, so each domain has an agent that is good at it.
    """
    _check_count("n_records", n_records, 1, 10_000_000)
    _check_count("n_agents", n_agents, 2, MAX_AGENTS)
    profiles = AGENT_PROFILES[:n_agents]
    domains = [profile.home_domain for profile in profiles]
    rng = np.random.default_rng(seed)
    records = []
    moment = LOG_START
    for _ in range(n_records):
        domain = domains[rng.integers(len(domains))]
        task_type = TASK_TYPES[rng.integers(len(TASK_TYPES))]
        if rng.random() < HOME_ROUTING_SHARE:
            agent = next(p for p in profiles if p.home_domain == domain)
        else:
            agent = profiles[rng.integers(len(profiles))]
        skill = success_probability(agent, domain, task_type)
        success = bool(rng.random() < skill)
        moment += timedelta(minutes=float(rng.exponential(MEAN_GAP_MINUTES)))
        records.append(InteractionRecord(
            task_description=_task_text(rng, domain, task_type, domains),
            chosen_agent=agent.name,
            success=success,
            response_time=_response_time(rng, task_type, skill),
            confidence=round(float(np.clip(rng.normal(skill, CONFIDENCE_NOISE), 0.0, 1.0)), 3),
            user_feedback=_feedback(rng, success),
            domain=domain,
            task_type=task_type,
            timestamp=moment.isoformat(timespec="seconds"),
        ))
    return records


def success_probability(agent: AgentProfile, domain: str, task_type: str) -> float:
    """The true chance ``agent`` solves a ``task_type`` task in ``domain``."""
    if (domain, task_type) in agent.specialities:
        return SPECIALITY_SKILL
    if domain == agent.home_domain:
        skill = HOME_SKILL
    elif domain in agent.secondary_domains:
        skill = SECONDARY_SKILL
    else:
        skill = OTHER_SKILL
    if task_type in agent.strong_types:
        skill += TYPE_BONUS
    elif task_type in agent.weak_types:
        skill -= TYPE_BONUS
    return float(np.clip(skill, *SKILL_BOUNDS))


def _task_text(rng: np.random.Generator, domain: str, task_type: str, domains: list[str]) -> str:
    words = DOMAIN_WORDS[domain]
    verb = _pick(rng, TASK_TYPE_VERBS[task_type])
    subject = _pick(rng, words)
    other_domain = domain
    if rng.random() < FOREIGN_WORD_RATE:
        other_domain = domains[rng.integers(len(domains))]
    second = _pick(rng, DOMAIN_WORDS[other_domain])
    return (
        f"{_pick(rng, OPENERS)}{verb} the {subject} {_pick(rng, CONNECTORS)} {second}"
        f"{_pick(rng, CLOSERS)}"
    )


def _response_time(rng: np.random.Generator, task_type: str, skill: float) -> float:
    """Seconds: longer for bigger task types and for agents out of their depth."""
    seconds = BASE_SECONDS[task_type] * (1.0 + 1.2 * (1.0 - skill)) * rng.lognormal(0.0, 0.35)
    return round(float(seconds), 3)


def _feedback(rng: np.random.Generator, success: bool) -> int:
    if rng.random() < FEEDBACK_NOISE_RATE:
        return int(rng.integers(1, 6))
    if success:
        return 5 if rng.random() < 0.6 else 4
    return int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25]))


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[rng.integers(len(options))]


def _check_count(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DataError(f"{name} must be an integer from {low} to {high}, got {value!r}")
