"""What an API key's role may read, from FullStory's documented role table.

GET /me answers the role of the user who made the key: ADMIN, ARCHITECT, USER, VIEW_ONLY,
UMBRELLA_MANAGER or UNKNOWN (developer.fullstory.com, server/v1/authentication/me).
FullStory's levels (server/v2/authentication): Standard sends data, lists sessions, views
recording settings and manages operations; Architect also views, exports and deletes user
data, privacy settings, search exports and raw data exports; Admin also element block
rules. A key may have been given less than its maker's role, so --test says what the role
allows, and a 403 during a sync still says what was refused.
"""

from dataclasses import dataclass

LEVELS = ("Standard", "Architect", "Admin")
ROLE_LEVELS = {"USER": "Standard", "ARCHITECT": "Architect", "ADMIN": "Admin"}
BELOW_STANDARD = ("VIEW_ONLY",)


@dataclass(frozen=True)
class Needs:
    """What reading a stream takes: the least level, and the paid add-on, if any."""

    level: str
    add_on: str = None

    def __str__(self):
        levels = " or ".join(LEVELS[LEVELS.index(self.level):]) \
            if self.level != "Standard" else "Standard"
        return f"the {self.add_on} add-on and {levels}" if self.add_on else levels


def level_of(role):
    """The level a /me role reaches ("Standard", "Architect", "Admin"), "" for a role
    below Standard, or None when the role says nothing FullStory documents."""
    if not isinstance(role, str):
        return None
    role = role.strip().upper()
    if role in BELOW_STANDARD:
        return ""
    return ROLE_LEVELS.get(role)


def verdict(needs, role):
    """One phrase: whether a key of `role` can read what `needs` names."""
    level = level_of(role)
    add_on = f"; the account also needs the {needs.add_on} add-on" if needs.add_on else ""
    if level is None:
        return (f"cannot tell from role {role!r}: it needs {needs.level} or above{add_on}")
    if level and LEVELS.index(level) >= LEVELS.index(needs.level):
        return f"readable ({role} reaches {needs.level}{add_on})"
    return (f"NOT readable: it needs {needs.level} or above, and role {role} "
            f"{'is below Standard' if not level else f'reaches only {level}'}; use a key "
            f"made by a user with that role, or deselect the stream{add_on}")
