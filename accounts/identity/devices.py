"""A short, human label for the device behind a user agent string."""

from user_agents import parse


def device_label(user_agent: str) -> str:
    """Return e.g. "Firefox 128 on Windows", "curl 8.5", or "Unknown device"."""
    if not user_agent.strip():
        return "Unknown device"
    agent = parse(user_agent)
    browser = " ".join(
        filter(None, [agent.browser.family, agent.browser.version_string.split(".")[0]])
    )
    system = agent.os.family if agent.os.family != "Other" else ""
    if agent.browser.family == "Other":
        browser = user_agent.split(" ", 1)[0].replace("/", " ")[:60]
    label = f"{browser} on {system}" if system else browser
    return label[:128] or "Unknown device"
