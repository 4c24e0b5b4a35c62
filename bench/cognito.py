"""Issue 14's benchmark: AdminCreateUser, InitiateAuth (USER_PASSWORD_AUTH) and a full
SRP sign-in with pycognito through boto3, against the floor (unkai's recorded answers
replayed); a REST API's GET with a Cognito authorizer against the same GET without one
(the key cached); and ListUsers with a filter in a pool of 10,000 users against one of 100.

    python bench/cognito.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

PASSWORD = "Passw0rd!"


def setup(server: harness.Server) -> dict[str, Any]:
    idp = server.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="bench")["UserPool"]
    client = idp.create_user_pool_client(UserPoolId=pool["Id"], ClientName="bench", ExplicitAuthFlows=[
        "ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool["Id"], Username="bench", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool["Id"], Username="bench", Password=PASSWORD, Permanent=True)
    return {"server": server, "idp": idp, "pool": pool, "client": client}


def calls(t: dict[str, Any]) -> dict[str, Any]:
    from pycognito.aws_srp import AWSSRP

    idp, pool, client = t["idp"], t["pool"]["Id"], t["client"]
    counter = itertools.count()
    return {
        "admin_create_user": lambda: idp.admin_create_user(UserPoolId=pool, Username=f"u{next(counter)}-{uuid.uuid4()}",
                                                           MessageAction="SUPPRESS"),
        "initiate_auth (USER_PASSWORD_AUTH)": lambda: idp.initiate_auth(
            ClientId=client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "bench",
                                                                           "PASSWORD": PASSWORD}),
        "SRP sign-in with pycognito": lambda: AWSSRP(username="bench", password=PASSWORD, pool_id=pool,
                                                     client_id=client, client=idp).authenticate_user(),
    }


def floor_of(unkai: dict[str, Any]) -> dict[str, Any]:
    canned: dict[str, Any] = {}
    for call in calls(unkai).values():
        recorded: list[dict] = []
        idp = unkai["idp"]

        # One record() per boto3 request: SRP makes two (InitiateAuth, RespondToAuthChallenge).
        original = idp._make_api_call

        def recording(operation: str, params: dict, _orig=original) -> Any:
            holder: dict[str, Any] = {}
            recorded.append(harness.record(idp, lambda c: holder.setdefault("r", _orig(operation, params))))
            return holder["r"]

        idp._make_api_call = recording
        try:
            call()
        finally:
            idp._make_api_call = original
        for entry in recorded:
            canned[entry["key"]] = entry
    floor = harness.start_floor(canned)
    target = dict(unkai, server=floor, idp=floor.client("cognito-idp"))
    return target


def authorizer_overhead(server: harness.Server, n: int) -> dict[str, Any]:
    import httpx

    t = setup(server)
    ag = server.client("apigateway")
    api = ag.create_rest_api(name="bench")
    auth = ag.create_authorizer(restApiId=api["id"], name="pool", type="COGNITO_USER_POOLS",
                                providerARNs=[t["pool"]["Arn"]], identitySource="method.request.header.Authorization")
    for path, kind in (("open", "NONE"), ("secure", "COGNITO_USER_POOLS")):
        res = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart=path)
        extra = {"authorizerId": auth["id"]} if kind != "NONE" else {}
        ag.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", authorizationType=kind, **extra)
        ag.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", type="MOCK",
                           requestTemplates={"application/json": '{"statusCode": 200}'})
        ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200",
                                    responseTemplates={"application/json": '{"ok": true}'})
        ag.put_method_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200")
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    token = t["idp"].initiate_auth(ClientId=t["client"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters={
        "USERNAME": "bench", "PASSWORD": PASSWORD})["AuthenticationResult"]["IdToken"]
    base = f"{server.endpoint}/_unkai/execute-api/{api['id']}/prod"
    http = httpx.Client()
    cases = (("without an authorizer", "/open", {}),
             ("with a Cognito authorizer", "/secure", {"Authorization": token}))
    samples: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    for i in range(50 + n):  # interleaved, so the shared machine's load swings hit both alike
        for label, path, headers in cases:
            t = time.perf_counter()
            assert http.get(base + path, headers=headers).status_code == 200
            if i >= 50:
                samples[label].append(time.perf_counter() - t)
    return {label: harness.stats(values) for label, values in samples.items()}


def list_users_scaling(server: harness.Server, sizes: tuple[int, ...], n: int) -> dict[str, Any]:
    """ListUsers with a selective ``email ^=`` filter in pools of each size, the pools
    timed interleaved (one call each in turn), so the shared machine's load swings hit
    every size alike."""
    idp = server.client("cognito-idp")
    probes = []
    for size in sizes:
        pool = idp.create_user_pool(PoolName=f"scale{size}")["UserPool"]["Id"]
        started = time.perf_counter()
        for i in range(size):
            idp.admin_create_user(UserPoolId=pool, Username=f"user{i:06d}", MessageAction="SUPPRESS",
                                  UserAttributes=[{"Name": "email", "Value": f"user{i:06d}@example.com"}])
        print(f"  {size} users created in {time.perf_counter() - started:.1f} s", flush=True)
        probes.append((f"{size} users", pool, f"user{size // 2:06d}"))
    samples: dict[str, list[float]] = {label: [] for label, _, _ in probes}
    for i in range(20 + n):
        for label, pool, probe in probes:
            t = time.perf_counter()
            found = idp.list_users(UserPoolId=pool, Filter=f'email ^= "{probe}"', Limit=10)["Users"]
            if i >= 20:
                samples[label].append(time.perf_counter() - t)
            assert [u["Username"] for u in found] == [probe]
    return {label: harness.stats(values) for label, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("authorizer", "list"), help="run one part only (while profiling)")
    args = parser.parse_args()
    n = 100 if args.quick else 500
    if args.only:
        server = harness.start_unkai()
        try:
            if args.only == "authorizer":
                found = {"authorizer": authorizer_overhead(server, n)}
            else:
                found = {"list_users": list_users_scaling(server, (100, 1000) if args.quick else (100, 10_000),
                                                          n // 2)}
            print(json.dumps(found, indent=1))
            print(harness.merge("cognito", found))
        finally:
            server.stop()
        return
    results: dict[str, Any] = {"machine": harness.machine()}
    rows = []
    server = harness.start_unkai()
    try:
        unkai = setup(server)
        floor = floor_of(unkai)
        try:
            for (name, fn), floor_fn in zip(calls(unkai).items(), calls(floor).values()):
                count = n // 5 if "SRP" in name else n
                f = harness.stats(harness.timed(floor_fn, count, warmup=10))
                u = harness.stats(harness.timed(fn, count, warmup=10))
                results[name] = {"floor": f, "unkai": u}
                rows.append([name, f"{f['median_ms']} / {f['p99_ms']}",
                             f"{u['median_ms']} / {u['p99_ms']} ({u['median_ms'] / f['median_ms']:.2f}x)"])
        finally:
            floor["server"].stop()
        print(harness.table(rows, ["operation (median / p99 ms)", "floor", "unkai"]))
        overhead = authorizer_overhead(server, n)
        results["authorizer"] = overhead
        plain, checked = overhead["without an authorizer"], overhead["with a Cognito authorizer"]
        print(harness.table([[k, f"{v['median_ms']} / {v['p99_ms']}"] for k, v in overhead.items()],
                            ["REST GET (median / p99 ms)", ""]))
        print(f"authorizer overhead: {checked['median_ms'] - plain['median_ms']:.3f} ms median")
        sizes = (100, 1000) if args.quick else (100, 10_000)
        scaling = list_users_scaling(server, sizes, n // 2)
        results["list_users"] = scaling
        small, large = scaling[f"{sizes[0]} users"], scaling[f"{sizes[1]} users"]
        print(harness.table([[k, f"{v['median_ms']} / {v['p99_ms']}"] for k, v in scaling.items()],
                            ["ListUsers email ^= (median / p99 ms)", ""]))
        print(f"ListUsers at {sizes[1]} users: {large['median_ms'] / small['median_ms']:.2f}x {sizes[0]} users")
    finally:
        server.stop()
    print(harness.write("cognito", results))


if __name__ == "__main__":
    main()
