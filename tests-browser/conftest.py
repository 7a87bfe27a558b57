"""A real `latchkey serve`, two real `latchkey device` processes, and headless Chromium sessions for the installer
and the owner. Screenshots go to $LATCHKEY_SCREENSHOTS (default ./screenshots)."""
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCREENSHOTS = os.environ.get("LATCHKEY_SCREENSHOTS", os.path.join(ROOT, "screenshots"))


def latchkey_binary():
    path = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(path, "latchkey")


class Service_:
    """The service and its devices, and small helpers to call its API and CLI as the test's people."""

    def __init__(self):
        self.binary = latchkey_binary()
        self.folder = tempfile.mkdtemp(prefix="latchkey-browser-")
        self.port = random.randint(20000, 29999)
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes = []
        # A manufacturer CA whose root the platform trusts; each device is issued its identity from it on first start.
        manufacturer = self.manufacturer = os.path.join(self.folder, "manufacturer")
        subprocess.run([self.binary, "manufacturer", "init", "--out", manufacturer], check=True, stdout=subprocess.DEVNULL)
        self.serve = self.start(["serve", "--port", str(self.port), "--data-dir", os.path.join(self.folder, "service"),
                                 "--manufacturer-roots", os.path.join(manufacturer, "roots.pem"), "--log-level", "warning"])
        self.wait_for(lambda: self.get("/healthz", raw=True) == b"ok\n")
        self.devices = {}
        for serial, model, firmware, kind in [("NVR-WEB-1", "DS-7608NI-K2", "V4.62.200", "nvr"),
                                              ("CAM-WEB-1", "DS-2CD2143G2-I", "V5.7.3", "camera"),
                                              ("CAM-WEB-OLD", "DS-2CD1043G0-I", "V5.5.0", "camera")]:
            port = random.randint(30000, 39999)
            process = self.start(["device", "--manufacturer", manufacturer, "--serial", serial, "--model", model,
                                  "--firmware", firmware, "--type", kind,
                                  "--cloud", self.url, "--listen", f"127.0.0.1:{port}", "--state-dir", os.path.join(self.folder, serial),
                                  "--admin-password", "Vecchia2023", "--discovery-port", "0"], capture=True)
            code = None
            deadline = time.time() + 30
            while code is None and time.time() < deadline:
                line = process.stdout.readline().decode()
                if line.startswith("verification code: "):
                    code = line.split(": ")[1].strip()
            self.devices[serial] = {"code": code, "address": f"127.0.0.1:{port}"}

    def start(self, arguments, capture=False):
        process = subprocess.Popen([self.binary] + arguments, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env={**os.environ, "DATABASE_URL": ""})
        self.processes.append(process)
        return process

    def wait_for(self, check, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if check():
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise AssertionError("timed out")

    def call(self, method, path, body=None, token=None):
        request = urllib.request.Request(self.url + "/api/v1" + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(request, timeout=10) as answer:
            data = answer.read()
            return json.loads(data) if data else None

    def get(self, path, raw=False):
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return answer.read() if raw else json.loads(answer.read())

    def cli(self, arguments, home, stdin=""):
        return subprocess.run([self.binary] + arguments, input=stdin, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "LATCHKEY_HOME": home, "DATABASE_URL": "",
                                   "LATCHKEY_MANUFACTURER_ROOTS": os.path.join(self.manufacturer, "roots.pem")})

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def service():
    running = Service_()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def people(service):
    """An owner and an installer, a site with three bound devices, the installer authorized — set up through the API."""
    owner = {"email": "lm.rossi@gmail.com", "password": "owner password 1"}
    installer = {"email": "ivan@impianti.it", "password": "installer password 1"}
    service.call("POST", "/accounts", {**owner, "name": "Laura Rossi", "role": "owner"})
    service.call("POST", "/accounts", {**installer, "name": "Ivan Bianchi", "role": "installer"})
    owner["token"] = service.call("POST", "/sessions", {"email": owner["email"], "password": owner["password"]})["token"]
    installer["token"] = service.call("POST", "/sessions", {"email": installer["email"], "password": installer["password"]})["token"]
    site = service.call("POST", "/sites", {"name": "Bar Centrale", "address": "Via Roma 1, Milano"}, owner["token"])
    service.call("POST", f"/sites/{site['id']}/authorizations",
                 {"installerEmail": installer["email"], "permissions": ["view", "password_reset"]}, owner["token"])
    for serial, device in service.devices.items():
        service.wait_for(lambda: service.call("POST", f"/sites/{site['id']}/devices",
                                              {"serial": serial, "verificationCode": device["code"]}, owner["token"]))
    for person in (owner, installer):
        person["home"] = tempfile.mkdtemp(prefix="latchkey-cli-")
        result = service.cli(["login", "--server", service.url, "--email", person["email"], "--password-stdin"], person["home"],
                             person["password"] + "\n")
        assert result.returncode == 0, result.stderr
    yield {"owner": owner, "installer": installer, "site": site}
    # The CLI's homes hold the two sessions' tokens: they do not outlive the run.
    for person in (owner, installer):
        shutil.rmtree(person["home"], ignore_errors=True)


def browser(language):
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                     f"--lang={language}"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


@pytest.fixture
def make_browser():
    opened = []

    def make(language="en"):
        driver = browser(language)
        driver.implicitly_wait(5)
        opened.append(driver)
        return driver

    yield make
    for driver in opened:
        driver.quit()


def shoot(driver, name):
    """Saves the page at desktop and phone width."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    for label, (width, height) in (("desktop", (1280, 900)), ("phone", (390, 844))):
        driver.set_window_size(width, height)
        time.sleep(0.2)
        driver.save_screenshot(os.path.join(SCREENSHOTS, f"{name}-{label}.png"))
    driver.set_window_size(1280, 900)


def open_first_notice(driver):
    """Opens the first notification of the list: a form (reading marks it read, so it is a POST), then its page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    import re as _re
    driver.find_element(By.CSS_SELECTOR, ".notice-link").click()
    WebDriverWait(driver, 10).until(lambda d: _re.search(r"/notifications/[0-9A-Fa-f-]{36}$", d.current_url))

