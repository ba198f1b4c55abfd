"""Shaping: one decoded event in, one record for the events stream out (or none).

What each field needs is worked out once from the schema and the selection, and what an
event of a given layout (its keys and value types) needs is worked out once per layout,
so most events cost one lookup, their timestamp checks and a few dictionary moves.
"""

from collections import Counter

import ciso8601

CUSTOM_VARS = "CustomVars"
EVENT_START = "EventStart"
NONE_TYPE = type(None)
TYPES = {"integer": frozenset({int, NONE_TYPE}),
         "number": frozenset({int, float, NONE_TYPE}),
         "string": frozenset({str, NONE_TYPE}),
         "boolean": frozenset({bool, NONE_TYPE})}
DATE_TIME = "date-time"
DROP = "drop"  # declared but not selected
MAX_PLANS = 4096  # distinct (keys, value types) layouts remembered


def is_date_time(value):
    """True for None or an RFC 3339 timestamp string."""
    if value is None:
        return True
    if type(value) is not str:
        return False
    try:
        ciso8601.parse_rfc3339(value)
    except ValueError:
        return False
    return True


def _rule(prop):
    if prop.get("format") == DATE_TIME:
        return DATE_TIME
    kinds = prop.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return frozenset().union(*(TYPES.get(kind, ()) for kind in kinds))


class RecordShaper:
    """Turns events into records for one schema, selection and start_date."""

    def __init__(self, schema, emitted_fields, start_date, identity_fields):
        owned = set(identity_fields) | {CUSTOM_VARS}
        self._rules = {name: (_rule(prop) if name in emitted_fields else DROP)
                       for name, prop in schema["properties"].items() if name not in owned}
        self._keep_custom = CUSTOM_VARS in emitted_fields
        self._identity = [f for f in identity_fields if f in emitted_fields]
        self._row = "ExportBundleRow" in self._identity
        self._plans = {}
        self._start_date = start_date
        self.misfits = Counter()
        self.before_start_date = 0

    def identity_values(self, bundle):
        """The identity fields that go on every record of `bundle`, row excluded."""
        values = {"ExportBundleId": bundle.id, "ExportBundleStop": bundle.stop_text}
        return {k: values[k] for k in self._identity if k in values}

    def shape(self, event, identity, row):
        """The record for `event` at `row` of its bundle, or None if before start_date.

        Takes `event` over (it becomes the record). Events with the same keys and value
        types share a plan worked out once, so most events cost a lookup and a few moves.
        """
        start = event.get(EVENT_START)
        if type(start) is str:  # parsed once: for start_date and as its own validity check
            try:
                if ciso8601.parse_rfc3339(start) < self._start_date:
                    self.before_start_date += 1
                    return None
            except ValueError:
                return self._shape_each_value(event, identity, row)
        signature = (tuple(event), tuple(map(type, event.values())))
        plan = self._plans.get(signature) or self._plan(signature)
        custom_keys, drop_keys, misfit_keys, date_keys = plan
        for key in date_keys:
            if not is_date_time(event[key]):
                return self._shape_each_value(event, identity, row)
        custom = {key: event.pop(key) for key in custom_keys} if custom_keys else None
        for key in drop_keys:
            del event[key]
        for key in misfit_keys:
            self.misfits[key] += 1
        event.update(identity)
        if custom and self._keep_custom:
            event[CUSTOM_VARS] = custom
        if self._row:
            event["ExportBundleRow"] = row
        return event

    def _plan(self, signature):
        """What events with these keys and value types need: (custom, drop, misfit,
        date-time keys to check)."""
        custom, drop, misfit, dates = [], [], [], []
        for key, kind in zip(*signature, strict=True):
            rule = self._rules.get(key)
            if rule is DROP:
                drop.append(key)
            elif rule is None or (kind not in rule if rule is not DATE_TIME
                                  else kind not in (str, NONE_TYPE)):
                (custom if self._keep_custom else drop).append(key)
                if rule is not None:
                    misfit.append(key)
            elif rule is DATE_TIME and kind is str and key != EVENT_START:
                dates.append(key)
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        plan = self._plans[signature] = (tuple(custom), tuple(drop), tuple(misfit),
                                         tuple(dates))
        return plan

    def _shape_each_value(self, event, identity, row):
        """The general path, value by value: for events with an unreadable timestamp."""
        record = dict(identity)
        custom = {}
        rules = self._rules
        for key, value in event.items():
            rule = rules.get(key)
            if rule is None:
                custom[key] = value
            elif rule is DROP:
                continue
            elif rule is DATE_TIME:
                if is_date_time(value):
                    record[key] = value
                else:
                    custom[key] = value
                    self.misfits[key] += 1
            elif type(value) in rule:
                record[key] = value
            else:
                custom[key] = value
                self.misfits[key] += 1
        if custom and self._keep_custom:
            record[CUSTOM_VARS] = custom
        if self._row:
            record["ExportBundleRow"] = row
        return record
