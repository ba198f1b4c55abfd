"""Recording settings, one generator per kind: the first version, then each next one.

A generator takes (rng, previous body or None, platform, the version's timestamp) and
returns the body without `metadata`, in the fields FullStory's settings endpoints use.
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


def privacy(rng, body, platform, stamp):
    if body is None:
        return {"elementBlocks": [_element_block(rng, NEVER, n) for n in range(2)],
                "ajaxWatches": [{"urlRegex": "https://api\\.example\\.com/v1/cart.*",
                                 "recordReq": True, "recordRsp": False,
                                 "whitelistReq": ["id"], "whitelistRsp": []}],
                "discardIpAddresses": False, "defaultPrivacyMode": "PRIVATE_BY_DEFAULT",
                "elementRuleGroups": {"1": {"name": "Payments", "description": "Card fields"}}}
    choice = rng.random()
    if choice < 0.5:
        body["elementBlocks"].append(_element_block(rng, stamp, len(body["elementBlocks"])))
    elif choice < 0.65:
        body["discardIpAddresses"] = not body["discardIpAddresses"]
    elif choice < 0.8:
        body["defaultPrivacyMode"] = rng.choice(["PRIVATE_BY_DEFAULT", "STANDARD"])
    else:
        version = rng.randrange(9)
        body["ajaxWatches"].append({"urlRegex": f"https://api\\.example\\.com/v{version}/.*",
                                    "recordReq": rng.random() < 0.5, "recordRsp": True,
                                    "whitelistReq": [], "whitelistRsp": ["status", "total"]})
    return body


def _element_block(rng, stamp, number):
    conditions = None if number % 2 == 0 else {
        "urlRegex": "https://example\\.com/checkout.*", "matchAll": True}
    return {"selector": rng.choice(SELECTORS), "consent": rng.random() < 0.2,
            "notes": rng.choice(["", "PII — see ticket #42", 'Asked by "legal"']),
            "type": rng.choice(["EXCLUDE", "MASK", "UNMASK"]),
            "scope": rng.choice(["EVERYWHERE", "URL"]), "lastUpdated": stamp,
            "label": f"Rule {number + 1}", "targetingConditions": conditions,
            "editable": number > 0, "exceptionSelectors": [] if number % 3 else [".public"],
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
        rule["enabled"] = not rule["enabled"]
        rule["sampleRate"] = rng.choice([5, 25, 50, 100])
        return body
    os_name = rng.choice(["android", "ios"])
    rules.append({"name": f"Sample {os_name} {len(rules) + 1}", "enabled": True,
                  "sampleRate": rng.choice([10, 50, 100]),
                  "conditions": [{"field": "platform", "operator": "EQUALS", "values": [os_name]},
                                 {"field": "appVersion", "operator": "GREATER_THAN",
                                  "values": [f"4.{rng.randrange(10)}"]}],
                  "actions": [{"type": "RECORD", "options": {"network": rng.random() < 0.5}}]})
    return body


GENERATORS = {"blocking": blocking, "domain": domain, "geo": geo, "privacy": privacy,
              "features": features, "targeting": targeting}
