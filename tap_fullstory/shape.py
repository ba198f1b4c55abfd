"""Shaping: one decoded row (an event, an individual, a user, a settings version) in, one
record for its stream out (or none, for an event before start_date).

What each field needs is worked out once from the schema and the selection, and what an
event of a given layout (its keys and value types) needs is worked out once per layout,
so most events cost one lookup, their timestamp checks and a few dictionary moves.

A value goes to the stream's catch-all object (CustomVars for events and individuals,
other_fields for the account's streams) under its own name when the schema does not
declare it, or when its type does not fit its column: an integer a 64-bit
signed column cannot hold, whether decode gave it as a WideInt (beyond 64 bits) or as an
int above 2**63 - 1, a Decimal (a number beyond a double), a string in an integer field.
"""

import operator
import re
import struct
from collections import Counter
from typing import NamedTuple

import ciso8601

from tap_fullstory.decode import INT64_MAX, INT64_MIN, UINT64_MAX

CUSTOM_VARS = "CustomVars"
NONE_TYPE = type(None)
TYPES = {"integer": frozenset({int, NONE_TYPE}),
         "number": frozenset({int, float, NONE_TYPE}),
         "string": frozenset({str, NONE_TYPE}),
         "boolean": frozenset({bool, NONE_TYPE}),
         "object": frozenset({dict, NONE_TYPE}),
         "array": frozenset({list, NONE_TYPE})}
NO_UNIT_FIELDS = (None, None, None)
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


KEY_MISFIT = "key misfit"  # a plan for rows whose key needs converting: the rare path
INTEGER_TEXT = re.compile(r"-?[0-9]{1,19}")  # not isdigit(), true for "²"; int() takes " ٣"


def _as_key(value, rule):
    """A key of the wrong type in the one its column has, when that loses nothing (an id
    sent as a number where FullStory documents a string, or the reverse); else as it is."""
    if str in rule and type(value) is int and INT64_MIN <= value <= UINT64_MAX:
        return str(value)
    if int in rule and type(value) is str and INTEGER_TEXT.fullmatch(value):
        number = int(value)
        # "007", "-0" and ids beyond a bigint column would not come back as they were sent
        if str(number) == value and INT64_MIN <= number <= INT64_MAX:
            return number
    return value


class Bounds(NamedTuple):
    """Which rows of one unit a run emits, by their start time: from `since` (start_date,
    or the bookmark if later) to before `until` (end_date, or None). `finishes_unit` is
    False while the unit straddles `until`: a row without a readable start then waits for
    the run that finishes the unit."""

    since: object
    until: object = None
    finishes_unit: bool = True


def _rule(prop):
    if prop.get("format") == DATE_TIME:
        return DATE_TIME
    kinds = prop.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return frozenset().union(*(TYPES.get(kind, ()) for kind in kinds))


class RecordShaper:
    """Turns rows into records for one schema and selection.

    `catch_all` names the object field for undeclared keys and misfits; `start_field` the
    timestamp `start_date` filters on (None: no filter); `unit_fields` the (id, stop, row)
    fields the tap adds from the unit a row came from (None where a stream has none)."""

    def __init__(self, schema, emitted_fields, catch_all=CUSTOM_VARS, start_date=None,
                 start_field=None, unit_fields=NO_UNIT_FIELDS, end_date=None, keys=()):
        id_field, stop_field, row_field = unit_fields
        owned = {f for f in unit_fields if f} | {catch_all}
        self._rules = {name: (_rule(prop) if name in emitted_fields else DROP)
                       for name, prop in schema["properties"].items() if name not in owned}
        # Integer columns: a Python int there must also fit in 64 signed bits.
        self._int64 = {name for name, rule in self._rules.items()
                       if isinstance(rule, frozenset) and int in rule and float not in rule}
        self._catch_all = catch_all
        self._keys = frozenset(keys)  # a key keeps its column: converted if it can be
        self._keep_custom = catch_all in emitted_fields
        self._unit_fields = {role: name for role, name in (("id", id_field),
                                                          ("stop", stop_field))
                             if name and name in emitted_fields}
        self._row = row_field if row_field in emitted_fields else None
        self._plans = {}
        self._start_field = start_field if start_date is not None else None
        self._start_date = start_date
        self._whole_range = Bounds(start_date, end_date)
        self.misfits = Counter()
        self.before_start_date = 0
        self.already_out = 0  # before `since` but not start_date: sent by an earlier run
        self.after_end_date = 0
        self.unreadable_event_start = 0  # emitted unchecked against start_date
        self.held_back = 0  # no readable start, in a unit the next range finishes

    def identity_values(self, unit):
        """The fields that go on every record of `unit`, its row number excluded."""
        values = {"id": unit.id, "stop": unit.stop_text}
        return {name: values[role] for role, name in self._unit_fields.items()}

    def shape(self, event, identity=None, row=None, bounds=None):
        """The record for `event` at `row` of its unit, or None if its start is outside
        `bounds` (default: start_date to end_date).

        Takes `event` over (it becomes the record). Events with the same keys and value
        types share a plan worked out once, so most events cost a lookup and a few moves.
        """
        start = event.get(self._start_field) if self._start_field else None
        if type(start) is str:  # parsed once: for the range and as its own validity check
            since, until, finishes_unit = bounds or self._whole_range
            try:
                moment = ciso8601.parse_rfc3339(start)
            except ValueError:
                if not finishes_unit:
                    return self._held_back()
                self.unreadable_event_start += 1
                return self._shape_each_value(event, identity, row)
            if moment < since:
                if moment < self._start_date:
                    self.before_start_date += 1
                else:
                    self.already_out += 1
                return None
            if until is not None and moment >= until:
                self.after_end_date += 1
                return None
        elif self._start_field:
            if not (bounds or self._whole_range).finishes_unit:
                return self._held_back()
            if start is not None:
                self.unreadable_event_start += 1
        signature = (*event, *map(type, event.values()))  # the keys, then their types
        plan = self._plans.get(signature) or self._plan(signature)
        if plan is KEY_MISFIT:
            return self._shape_each_value(event, identity, row)
        custom_keys, drop_keys, misfit_keys, date_keys, ints, as_int64 = plan
        try:
            for key in date_keys:
                ciso8601.parse_rfc3339(event[key])
        except ValueError:
            return self._shape_each_value(event, identity, row)
        if ints:
            try:
                as_int64(*ints(event))
            except struct.error:  # an int beyond what a bigint column holds
                return self._shape_each_value(event, identity, row)
        custom = {key: event.pop(key) for key in custom_keys} if custom_keys else None
        for key in drop_keys:
            del event[key]
        for key in misfit_keys:
            self.misfits[key] += 1
        if identity:
            event.update(identity)
        if custom and self._keep_custom:
            event[self._catch_all] = custom
        if self._row:
            event[self._row] = row
        return event

    def _plan(self, signature):
        """What events with these keys and value types need: (custom, drop, misfit,
        date-time keys to check, a getter of the ints bound for integer columns, and a
        packer that refuses any of them beyond 64 signed bits)."""
        custom, drop, misfit, dates, ints = [], [], [], [], []
        half = len(signature) // 2
        for key, kind in zip(signature[:half], signature[half:], strict=True):
            rule = self._rules.get(key)
            if rule is DROP:
                drop.append(key)
            elif rule is None or (kind not in rule if rule is not DATE_TIME
                                  else kind not in (str, NONE_TYPE)):
                if key in self._keys:  # the rare path converts it, or keeps it as it is
                    self._plans[signature] = KEY_MISFIT
                    return KEY_MISFIT
                (custom if self._keep_custom else drop).append(key)
                if rule is not None:
                    misfit.append(key)
            elif rule is DATE_TIME and kind is str and key != self._start_field:
                dates.append(key)
            elif kind is int and key in self._int64:
                ints.append(key)
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        getter = packer = None
        if ints:  # the first key twice, so that the getter returns a tuple even for one key
            getter = operator.itemgetter(*ints, ints[0])
            packer = struct.Struct(f"{len(ints) + 1}q").pack  # a C-fast range check of all
        plan = self._plans[signature] = (tuple(custom), tuple(drop), tuple(misfit),
                                         tuple(dates), getter, packer)
        return plan

    def _held_back(self):
        """An event without a readable start time cannot be placed on either side of
        end_date: it goes out once, in the run that finishes its unit, not in this one."""
        self.held_back += 1
        return None

    def _shape_each_value(self, event, identity, row):
        """The general path, value by value: for events with an unreadable timestamp or an
        integer too big for its column."""
        record = dict(identity or {})
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
            elif type(value) in rule and (type(value) is not int or key not in self._int64
                                          or INT64_MIN <= value <= INT64_MAX):
                record[key] = value
            elif key in self._keys:
                record[key] = _as_key(value, rule)
                self.misfits[key] += 1
            else:
                custom[key] = value
                self.misfits[key] += 1
        if custom and self._keep_custom:
            record[self._catch_all] = custom
        if self._row:
            record[self._row] = row
        return record

    def report(self, logger):
        """Log what a run did not emit as it came: the end-of-run lines."""
        if self.before_start_date:
            logger.info("%d event(s) earlier than start_date were not emitted.",
                        self.before_start_date)
        if self.already_out:
            logger.info("%d event(s) earlier than the bookmark (an earlier run sent them) "
                        "were not emitted again.", self.already_out)
        if self.after_end_date:
            logger.info("%d event(s) at or after end_date were not emitted (the next range "
                        "has them).", self.after_end_date)
        fate = (f"went to {self._catch_all}" if self._keep_custom
                else f"were dropped, as {self._catch_all} is not selected")
        for field, count in sorted(self.misfits.items()):
            logger.warning("%d value(s) of %s did not fit its type and %s.", count, field, fate)
        if self.unreadable_event_start:
            logger.warning("%d event(s) had an %s that is not an RFC 3339 timestamp; they "
                           "were emitted, as start_date cannot be checked for them.",
                           self.unreadable_event_start, self._start_field)
        if self.held_back:
            logger.info("%d event(s) without a readable %s were left for the run that "
                        "finishes their unit (it straddles end_date).", self.held_back,
                        self._start_field)
