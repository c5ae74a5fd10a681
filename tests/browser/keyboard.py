"""Moving through a page with the keyboard alone, as a user without a mouse does."""

FOCUSED = """() => {
  const e = document.activeElement;
  return e ? (e.id || e.getAttribute("name") || e.textContent.trim()).slice(0, 60) : "";
}"""


def tab_to(page, selector: str, *, limit: int = 80) -> list[str]:
    """Press Tab until the element matching `selector` has the focus; the stops on the way."""
    stops = []
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return stops
        page.keyboard.press("Tab")
        stops.append(page.evaluate(FOCUSED))
    raise AssertionError(f"Tab never reached {selector}; stops: {stops}")
