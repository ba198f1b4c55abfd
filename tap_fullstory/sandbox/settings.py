"""Recording settings, one generator per kind: the first version, then each next one.

A generator takes (rng, previous body or None, platform, the version's timestamp) and
returns the body without `metadata`, in the fields FullStory's settings endpoints use.
Enums and types are FullStory's documented ones: privacy settings from
get-privacy-settings-history (elementBlocks' BLOCK_* types and *_SESSIONS scopes, a string
`editable`, ajaxWatches' ELIDE/WHITELIST strings, PRIVACY_MODE_OFF), targeting rules from
get-targeting-settings-history (a scope and conditions of {field, operator, values}, joined
AND or OR, with children).
"""

PLATFORMS = {"blocking": ("web",), "domain": ("web", "mobile"), "geo": ("web",),
             "privacy": ("web",), "features": ("web", "mobile"), "targeting": ("web",)}
NEVER = "0001-01-01T00:00:00Z"  # what FullStory shows for rules never edited since import
FEATURES = ["consoleWatcher", "ajaxWatcher", "resourceUploading", "recordingShutoff",
            "clientSideRageClick", "enabled"]
ZONES = ["US", "CA", "DE", "FR", "BR", "JP", "US-CA", "EU"]
SELECTORS = [".cc-number", "input[type=password]", "#ssn", ".address *", "[data-private]",
             "img.avatar", "div.chat > p"]


def blocking(rng, body, platform, stamp):
    if body is None:
        return {"blockedIps": ["10.0.0.*"], "blockedUas": [], "blockedAppIds": []}
    key = rng.choice(sorted(body))
    if body[key] and rng.random() < 0.3:
        body[key].pop(rng.randrange(len(body[key])))
    else:
        n = rng.randrange(1, 250)
        body[key].append({"blockedIps": f"198.51.100.{n}", "blockedUas": f"Monitor-{n}/1.0",
                          "blockedAppIds": f"com.example.internal{n}"}[key])
    return body


def domain(rng, body, platform, stamp):
    if body is None:
        first = "example.com" if platform == "web" else "com.example.shop"
        return {"onlyRecordKnownDomains": False,
                "domains": [{"domain": first, "disabled": False}]}
    if rng.random() < 0.2:
        body["onlyRecordKnownDomains"] = not body["onlyRecordKnownDomains"]
    elif rng.random() < 0.4:
        entry = rng.choice(body["domains"])
        entry["disabled"] = not entry["disabled"]
    else:
        body["domains"].append({"domain": f"shop{rng.randrange(100)}.example.org",
                                "disabled": rng.random() < 0.2})
    return body


def geo(rng, body, platform, stamp):
    mode = "ALL" if body is None else rng.choice(["ALL", "ALLOWLIST", "BLOCKLIST"])
    zones = [] if mode == "ALL" else sorted(rng.sample(ZONES, rng.randrange(1, 4)))
    return {"recordGeoMode": mode, "recordGeoZones": zones}


BLOCK_TYPES = ["BLOCK_EXCLUDE", "BLOCK_MASK", "BLOCK_UNMASK"]
BLOCK_SCOPES = ["ALL_SESSIONS", "NO_SESSIONS", "PREVIEW_SESSIONS_ONLY", "LIVE_SESSIONS_ONLY"]
AJAX_RECORDING = ["ELIDE", "WHITELIST"]
TARGET_FIELDS = ["UID", "IP", "LOCATION", "PLATFORM", "DOMAIN", "USER_AGENT", "APP_VERSION"]
TARGET_OPERATORS = ["EQ", "NEQ", "LT", "LTE", "GT", "GTE", "RANGE", "CONTAINS"]


def privacy(rng, body, platform, stamp):
    if body is None:
        return {"elementBlocks": [_element_block(rng, NEVER, n) for n in range(2)],
                "ajaxWatches": [_ajax_watch(rng, 1)],
                "discardIpAddresses": False, "defaultPrivacyMode": "PRIVACY_MODE_OFF",
                "elementRuleGroups": {"1": {"name": "Payments", "description": "Card fields"}}}
    choice = rng.random()
    if choice < 0.5:
        body["elementBlocks"].append(_element_block(rng, stamp, len(body["elementBlocks"])))
    elif choice < 0.7:
        body["discardIpAddresses"] = not body["discardIpAddresses"]
    else:
        body["ajaxWatches"].append(_ajax_watch(rng, rng.randrange(9)))
    return body


def _ajax_watch(rng, version):
    return {"urlRegex": f"https://api\\.example\\.com/v{version}/.*",
            "recordReq": rng.choice(AJAX_RECORDING), "recordRsp": rng.choice(AJAX_RECORDING),
            "whitelistReq": rng.choice(["", "id", "id,quantity"]),
            "whitelistRsp": rng.choice(["", "status,total"])}


def _element_block(rng, stamp, number):
    conditions = None if number % 2 == 0 else {
        "urlRegex": "https://example\\.com/checkout.*", "matchAll": True}
    return {"selector": rng.choice(SELECTORS), "consent": rng.random() < 0.2,
            "notes": rng.choice(["", "PII — see ticket #42", 'Asked by "legal"']),
            "type": rng.choice(BLOCK_TYPES), "scope": rng.choice(BLOCK_SCOPES),
            "lastUpdated": stamp, "label": f"Rule {number + 1}",
            "targetingConditions": conditions, "editable": "EDITABLE_DESCRIPTION_ONLY",
            "exceptionSelectors": [] if number % 3 else [".public"],
            "groupId": rng.choice([0, 1])}


def features(rng, body, platform, stamp):
    if body is None:
        return {"enabled": True, "consoleWatcher": True, "ajaxWatcher": platform == "web",
                "resourceUploading": True, "recordingShutoff": False,
                "clientSideRageClick": platform == "web"}
    key = rng.choice(FEATURES[:-1] if rng.random() < 0.9 else FEATURES)
    body[key] = not body[key]
    return body


def targeting(rng, body, platform, stamp):
    if body is None:
        body = {"sessionTargetingRules": []}
    rules = body["sessionTargetingRules"]
    if rules and rng.random() < 0.4:
        rule = rng.choice(rules)
        rule["conditions"].append(_condition(rng))
        return body
    rule = {"scope": rng.choice(BLOCK_SCOPES[:2]), "join": rng.choice(["AND", "OR"]),
            "conditions": [_condition(rng)], "children": []}
    if rng.random() < 0.5:
        rule["children"].append({"join": "AND", "conditions": [_condition(rng)],
                                 "children": []})
    rules.append(rule)
    return body


def _condition(rng):
    field = rng.choice(TARGET_FIELDS)
    operator = "RANGE" if field == "APP_VERSION" and rng.random() < 0.5 else rng.choice(
        [op for op in TARGET_OPERATORS if op != "RANGE"])
    values = {"UID": ["user-1339"], "IP": ["198.51.100.0/24"], "LOCATION": ["US", "CA"],
              "PLATFORM": ["ANDROID"], "DOMAIN": ["shop.example.com"],
              "USER_AGENT": ["Monitor"], "APP_VERSION": ["4.0", "4.9"]}[field]
    return {"field": field, "operator": operator,
            "values": values if operator == "RANGE" else values[:1]}


GENERATORS = {"blocking": blocking, "domain": domain, "geo": geo, "privacy": privacy,
              "features": features, "targeting": targeting}
