"""The explorer in a real headless Chromium (Debian's chromium and chromedriver; no download).

Facts and votes are written through the HTTP API; the page is then driven as a person would:
search a subject, read each predicate's resolution, switch lenses, open a record, search an
unknown subject, and see the message when the store is down. A screenshot is saved (into docs/
with STEMEDB_UPDATE_SCREENSHOT=1, which is how docs/explorer.png is made).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stemedb.client import AgentKey
from tests.gateway.gwstack import (
    GatewayStack,
    running_gateway,
    signed_assertion_json,
    signed_epoch_json,
    vote_json,
)
from tests.support import ROOT, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 20


def _browser(profile: Path) -> Any:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        reason = "chromium and chromium-driver are not installed (make sysdeps)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the browser test must run")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)


def _screenshot(driver: Any, path: Path) -> None:
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    if os.environ.get("STEMEDB_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(path, ROOT / "docs" / path.name)


def _post(gw: GatewayStack, path: str, body: Any) -> dict[str, Any]:
    r = httpx.post(gw.url + path, json=body, timeout=30)
    assert r.status_code == 201, r.text
    receipt: dict[str, Any] = r.json()["receipt"]
    return receipt


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayStack, dict[str, Any]]]:
    with running_gateway(tmp_path_factory.mktemp("explorer")) as gw:
        alice, bob, carol = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
        voters = [AgentKey.generate() for _ in range(3)]
        name = _post(
            gw, "/v1/assertions", signed_assertion_json(alice, "Q42", "name", "Douglas Adams")
        )
        rival = _post(
            gw,
            "/v1/assertions",
            signed_assertion_json(bob, "Q42", "name", "Douglas Noël Adams", 0.6),
        )
        for v in voters:
            _post(gw, "/v1/votes", vote_json(v, name["hash"], 1.0))
        _post(gw, "/v1/votes", vote_json(carol, rival["hash"], -1.0))
        born = _post(gw, "/v1/assertions", signed_assertion_json(alice, "Q42", "born", "1952"))
        old = _post(gw, "/v1/epochs", signed_epoch_json(carol, "radio-era"))
        retired = _post(
            gw,
            "/v1/assertions",
            signed_assertion_json(
                carol, "Q42", "occupation", "radio writer", 0.8, epoch=old["hash"]
            ),
        )
        _post(
            gw,
            "/v1/epochs",
            signed_epoch_json(
                carol, "novel-era", supersedes=old["hash"], how="SUPERSESSION_TYPE_REVOLUTION"
            ),
        )
        last = _post(
            gw, "/v1/assertions", signed_assertion_json(bob, "Q42", "occupation", "novelist")
        )
        httpx.get(gw.url + "/v1/subjects/Q42", params={"min_lsn": last["lsn"]}, timeout=30)
        yield (
            gw,
            {
                "name": name,
                "rival": rival,
                "born": born,
                "retired": retired,
                "alice": alice,
                "voters": voters,
            },
        )


def test_explorer_search_lenses_record_and_errors(
    world: tuple[GatewayStack, dict[str, Any]], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    gw, facts = world
    driver = _browser(tmp_path / "profile")
    wait = WebDriverWait(driver, WAIT_SECONDS)

    def slot(predicate: str) -> Any:
        return driver.find_element(By.CSS_SELECTOR, f'.slot[data-predicate="{predicate}"]')

    try:
        driver.get(gw.url + "/")
        assert "StemeDB explorer" in driver.title
        box = driver.find_element(By.ID, "subject")
        box.send_keys("Q42")
        driver.find_element(By.CSS_SELECTOR, "#search button").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".slot")) == 3)

        name = slot("name")
        assert name.find_element(By.CSS_SELECTOR, ".status").text == "RESOLVED"
        assert name.find_element(By.CSS_SELECTOR, ".winner").text == "Douglas Adams"
        rows = name.find_elements(By.CSS_SELECTOR, "tr.candidate")
        assert [r.get_attribute("data-hash") for r in rows] == [
            facts["name"]["hash"],
            facts["rival"]["hash"],
        ]
        # support 0.9 (alice signed) + 3 votes; the rival: bob's 0.6 against carol's dispute
        cells = rows[0].find_elements(By.TAG_NAME, "td")
        assert cells[3].text == "3.9" and cells[4].text == "0" and cells[5].text == "4"
        cells = rows[1].find_elements(By.TAG_NAME, "td")
        assert cells[3].text == "0.6" and cells[4].text == "1" and cells[6].text == "1"
        wait.until(
            lambda d: rows[1].find_element(By.CSS_SELECTOR, "td.value").text == "Douglas Noël Adams"
        )
        assert "winner" in rows[0].find_element(By.CSS_SELECTOR, "td.flag").text

        occupation = slot("occupation")
        assert occupation.find_element(By.CSS_SELECTOR, ".winner").text == "novelist"
        retired = occupation.find_element(By.CSS_SELECTOR, "tr.candidate.retired")
        assert retired.get_attribute("data-hash") == facts["retired"]["hash"]
        assert "retired" in retired.text

        # The recent lens: last writer wins, so the rival (written second) wins "name".
        Select(driver.find_element(By.ID, "lens")).select_by_value("recent")
        wait.until(
            lambda d: (
                slot("name").find_element(By.CSS_SELECTOR, ".winner").text == "Douglas Noël Adams"
            )
        )
        assert "recent lens" in driver.find_element(By.ID, "results-meta").text
        assert "lens=recent" in driver.current_url

        Select(driver.find_element(By.ID, "lens")).select_by_value("skeptic")
        wait.until(lambda d: "skeptic lens" in d.find_element(By.ID, "results-meta").text)
        # born has one supporter: skeptic wants two, so it is UNCERTAIN (DESIGN 9.7, check 1)
        wait.until(
            lambda d: slot("born").find_element(By.CSS_SELECTOR, ".status").text == "UNCERTAIN"
        )

        Select(driver.find_element(By.ID, "lens")).select_by_value("consensus")
        wait.until(lambda d: "consensus lens" in d.find_element(By.ID, "results-meta").text)
        wait.until(
            lambda d: all(c.text != "…" for c in d.find_elements(By.CSS_SELECTOR, "td.value"))
        )
        _screenshot(driver, tmp_path / "explorer.png")
        slot("name").find_element(By.CSS_SELECTOR, "tr.candidate a.hash").click()
        panel = wait.until(ec.visibility_of_element_located((By.ID, "record")))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#record-votes tr.vote")) == 3)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#record-history tr.history"))
        text = panel.text
        assert facts["name"]["hash"] in text and "Douglas Adams" in text
        assert facts["alice"].public_key_hex in text  # the signer
        tally = driver.find_element(By.ID, "record-tally").text
        assert "supporters\n4" in tally and "counted votes\n3" in tally
        history = driver.find_elements(By.CSS_SELECTOR, "#record-history tr.history")
        assert history[0].find_element(By.TAG_NAME, "td").text == str(facts["name"]["lsn"])

        # Check inclusion: verified in the browser (audit path and the checkpoint's signature).
        driver.find_element(By.ID, "check-inclusion").click()

        def checked(d: Any) -> bool:
            state = d.find_element(By.ID, "inclusion").get_attribute("data-state")
            if state == "pending":  # no checkpoint covers the record yet: ask again
                d.find_element(By.ID, "check-inclusion").click()
            return state in ("verified", "failed", "partial")

        wait.until(checked)
        inclusion = driver.find_element(By.ID, "inclusion")
        assert inclusion.get_attribute("data-state") == "verified", inclusion.text
        assert f"LSN {facts['name']['lsn']} is leaf {facts['name']['lsn'] - 1}" in inclusion.text

        _screenshot(driver, tmp_path / "explorer-record.png")

        box = driver.find_element(By.ID, "subject")
        box.clear()
        box.send_keys("Nobody at all")
        driver.find_element(By.CSS_SELECTOR, "#search button").click()
        message = wait.until(ec.visibility_of_element_located((By.ID, "message")))
        wait.until(lambda d: "No facts about “Nobody at all”" in message.text)
        assert not driver.find_element(By.ID, "results").is_displayed()

        gw.stack.ingestor.kill()  # the store goes down: the page says so
        box.clear()
        box.send_keys("Q42")
        driver.find_element(By.CSS_SELECTOR, "#search button").click()
        wait.until(
            lambda d: (
                "The store (ingestor) is not answering" in d.find_element(By.ID, "message").text
            )
        )
    finally:
        driver.quit()


# Run in the page: StemeVerify against the vectors and the live gateway, untouched and tampered.
_VECTORS_SCRIPT = Path(__file__).with_name("explorer_vectors.js")


def test_inclusion_check_in_the_browser_refuses_tampering(tmp_path: Path) -> None:
    """The page's verifier against the RFC 6962 vectors, the Go note vector and the live
    gateway; every tampered input fails. Debian's Chromium must check ed25519 (WebCrypto).
    (A stack of its own: the test above stops its ingestor.)"""
    with running_gateway(tmp_path / "stack") as gw:
        key = AgentKey.generate()
        for i in range(3):
            lsn = _post(gw, "/v1/assertions", signed_assertion_json(key, "V", f"p{i}", "x"))["lsn"]
        _check_in_browser(gw, lsn - 1, tmp_path)


def _check_in_browser(gw: GatewayStack, lsn: int, tmp_path: Path) -> None:

    def covered() -> bool:
        r = httpx.get(gw.url + "/v1/checkpoint", timeout=10)
        return r.status_code == 200 and int(r.json()["checkpoint"].split("\n")[1]) >= lsn

    wait_until(covered, 30, "a checkpoint covering the first record")
    vectors = json.loads((ROOT / "tests" / "vectors" / "merkle.json").read_text())
    args = {"tree": vectors["tree"], "notes": vectors["notes"], "lsn": lsn}
    driver = _browser(tmp_path / "profile")
    try:
        driver.set_script_timeout(WAIT_SECONDS)
        driver.get(gw.url + "/")
        out = driver.execute_async_script(_VECTORS_SCRIPT.read_text(), args)
    finally:
        driver.quit()
    assert "error" not in out, out.get("error")
    assert out["paths"] and all(p["ok"] for p in out["paths"]), out["paths"]
    assert not any(p["flipped_ok"] for p in out["paths"] if p["n"]), out["paths"]
    assert out["note"] == "verified", out
    assert out["note_flipped"] == "failed" and out["note_other_key"] == "failed", out
    live = out["live"]
    assert live["ok"] and live["merkle"] and live["signature"] == "verified", live
    for name in ("live_flipped", "live_leaf", "live_lsn"):
        assert not out[name]["ok"] and not out[name]["merkle"], (name, out[name])
    assert not out["live_other_key"]["ok"] and out["live_other_key"]["signature"] == "failed"
    bad_root = out["live_other_root"]
    assert not bad_root["ok"] and bad_root["signature"] == "failed" and not bad_root["merkle"]
