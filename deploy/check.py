#!/usr/bin/python3
"""Offline checks of the real-SGX deployment files (make check-deploy).

What this machine can check without SGX, Gramine, Docker or a cluster:

  1. deploy/k8s renders with `kubectl kustomize` (skipped, and said so, when
     kubectl is missing and --allow-no-kubectl is given), every document is
     YAML with apiVersion/kind/metadata.name, and the contract holds: the
     occ-serve Deployment requests sgx.intel.com/epc and sgx.intel.com/enclave
     (requests == limits), asks for the aesmd quote provider, runs no args of
     the host's; its Service is TCP on the enclave's TLS port and no Ingress
     exists; the broker is its own Deployment running `occ keys serve` with
     --listen --key-dir --policy --root, requests no SGX resource, and its
     Service and NetworkPolicy select it; every selector matches its pods and
     every named targetPort exists; the broker's Intel root is Intel's.
  2. deploy/gramine/occ-serve.manifest.template renders (stub values for the
     Jinja expressions), parses as TOML and sets what docs/deploy.md says:
     DCAP attestation, production enclave, size a power of two, argv from a
     trusted file, packs allowed (untrusted), /dev/shm as untrusted_shm, and
     every library `ldd OCC_BIN` lists is trusted (or Gramine's own).
  3. deploy/docker/Dockerfile: Debian 12 stages, every COPY source exists,
     the manifest path it copies is the template checked above.

Exit 0 when everything checked holds, 1 otherwise; prints "N passed, N failed".
"""
import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTEL_ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
# Libraries Gramine's runtime (gramine.runtimedir()) provides in place of Debian's.
GRAMINE_RUNTIME_LIBS = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                        "libresolv.so.2", "ld-linux-x86-64.so.2", "linux-vdso.so.1"}
# Only in the sanitizer build the tests use; the image is a release build.
SANITIZER_LIBS = re.compile(r"^lib(asan|ubsan|lsan|tsan)\.so")

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)
    return cond


def note(msg):
    print(f"check-deploy: {msg}")


# ---------------------------------------------------------------- kubernetes

def render_k8s(allow_no_kubectl):
    k8s = os.path.join(ROOT, "deploy", "k8s")
    kubectl = shutil.which("kubectl")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", k8s], capture_output=True, text=True)
        if not check(r.returncode == 0, f"kubectl kustomize deploy/k8s: {r.stderr.strip()}"):
            return None, False
        note("rendered deploy/k8s with kubectl kustomize")
        return list(yaml.safe_load_all(r.stdout)), True
    if not allow_no_kubectl:
        check(False, "kubectl not found (Debian: apt-get install kubernetes-client); "
                     "or pass --allow-no-kubectl to check the YAML alone")
        return None, False
    note("SKIP: kubectl not found: the kustomization is NOT rendered, only its resources parsed")
    kust = yaml.safe_load(open(os.path.join(k8s, "kustomization.yaml")))
    docs = []
    for res in kust.get("resources", []):
        docs += [d for d in yaml.safe_load_all(open(os.path.join(k8s, res))) if d]
    return docs, False


def find(docs, kind, name):
    for d in docs:
        if d.get("kind") == kind and d.get("metadata", {}).get("name", "").startswith(name):
            return d
    return None


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(docs, rendered):
    for d in docs:
        check(d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"),
              f"document without apiVersion/kind/metadata.name: {str(d)[:80]}")
    check(not any(d.get("kind") == "Ingress" for d in docs),
          "an Ingress would terminate TLS outside the enclave")
    if rendered:
        for d in docs:
            if d["kind"] != "Namespace":
                check(d["metadata"].get("namespace") == "occlumency",
                      f"{d['kind']}/{d['metadata']['name']} not in namespace occlumency")

    serve = find(docs, "Deployment", "occ-serve")
    if not check(serve is not None, "Deployment occ-serve"):
        return
    pod = serve["spec"]["template"]
    check(labels_match(serve["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]),
          "occ-serve selector matches its pods")
    check(pod["metadata"].get("annotations", {}).get("sgx.intel.com/quote-provider") == "aesmd",
          "occ-serve asks for the aesmd quote provider")
    c = pod["spec"]["containers"][0]
    res = c.get("resources", {})
    for r in ("sgx.intel.com/epc", "sgx.intel.com/enclave"):
        check(r in res.get("limits", {}), f"occ-serve limits {r}")
        check(str(res.get("requests", {}).get(r)) == str(res.get("limits", {}).get(r)),
              f"occ-serve requests {r} == limits (extended resources cannot be overcommitted)")
    check("args" not in c and "command" not in c,
          "occ-serve takes no command/args: its command line is the manifest's measured argv file")
    ports = {p["name"]: p for p in c.get("ports", [])}
    check("https" in ports and ports["https"]["containerPort"] == 8443, "occ-serve exposes 8443 as https")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    check("/var/run/aesmd" in mounts, "occ-serve mounts the aesmd socket folder")
    check("/dev/shm" in mounts, "occ-serve mounts /dev/shm (the untrusted_shm of the manifest)")
    if rendered:
        check("registry.example.com/occlumency/occ-serve" in c["image"], "the kustomization sets the image")

    svc = find(docs, "Service", "occ-serve")
    if check(svc is not None, "Service occ-serve"):
        check(labels_match(svc["spec"]["selector"], pod["metadata"]["labels"]), "Service occ-serve selects the pods")
        check(svc["spec"].get("type") == "LoadBalancer", "occ-serve is a layer-4 LoadBalancer Service")
        for p in svc["spec"]["ports"]:
            check(p.get("protocol", "TCP") == "TCP" and p["targetPort"] in ports,
                  f"Service port {p.get('name')} is TCP to a named container port")
        check(any(p["targetPort"] == "https" for p in svc["spec"]["ports"]), "the Service reaches the enclave's TLS")

    broker = find(docs, "Deployment", "occ-broker")
    if not check(broker is not None, "the broker is its own Deployment"):
        return
    bpod = broker["spec"]["template"]
    bc = bpod["spec"]["containers"][0]
    args = bc.get("args", [])
    check(args[:2] == ["keys", "serve"], "the broker runs `occ keys serve`")
    for flag in ("--listen", "--key-dir", "--policy", "--root"):
        check(flag in args, f"the broker passes {flag}")
    check(not any(k.startswith("sgx.intel.com/") for k in bc.get("resources", {}).get("limits", {})),
          "the broker requests no SGX resource")
    bsvc = find(docs, "Service", "occ-broker")
    check(bsvc is not None and labels_match(bsvc["spec"]["selector"], bpod["metadata"]["labels"]),
          "Service occ-broker selects the broker")
    np = find(docs, "NetworkPolicy", "occ-broker")
    check(np is not None and labels_match(np["spec"]["podSelector"]["matchLabels"], bpod["metadata"]["labels"]),
          "the NetworkPolicy protects the broker")
    if np:
        src = np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        check(labels_match(src, pod["metadata"]["labels"]), "only occ-serve pods may reach the broker")
    cm_names = {v["configMap"]["name"] for v in bpod["spec"]["volumes"] if "configMap" in v}
    if rendered:
        cm = find(docs, "ConfigMap", "occ-broker-config")
        check(cm is not None and cm["metadata"]["name"] in cm_names,
              "the broker mounts the generated occ-broker-config")
        if cm:
            check({"policy.json", "intel-sgx-root-ca.pem"} <= set(cm.get("data", {})),
                  "occ-broker-config has the policy and the root")


def check_intel_root():
    pem = os.path.join(ROOT, "deploy", "k8s", "broker", "intel-sgx-root-ca.pem")
    r = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], capture_output=True)
    check(r.returncode == 0 and hashlib.sha256(r.stdout).hexdigest() == INTEL_ROOT_SHA256,
          "deploy/k8s/broker/intel-sgx-root-ca.pem is the Intel SGX Root CA (SHA-256 of its DER)")


# ---------------------------------------------------------------- gramine

STUBS = {
    "gramine.libos": "/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so",
    "gramine.runtimedir()": "/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc",
    "arch_libdir": "/lib/x86_64-linux-gnu",
    "log_level": "error",
    "enclave_size": "1G",
    "max_threads": "64",
    "isv_prod_id": "1",
    "isv_svn": "1",
}


def render_template(text):
    check("{%" not in text, "the manifest template uses only {{ expressions }} (no Jinja blocks)")
    unknown = set()

    def sub(m):
        expr = m.group(1).strip()
        if expr not in STUBS:
            unknown.add(expr)
            return "UNKNOWN"
        return STUBS[expr]

    out = re.sub(r"\{\{(.*?)\}\}", sub, text)
    check(not unknown, f"unknown template expressions: {sorted(unknown)}")
    return out


def ldd_libs(occ):
    r = subprocess.run(["ldd", occ], capture_output=True, text=True)
    if r.returncode:
        return None
    libs = set()
    for line in r.stdout.splitlines():
        name = line.strip().split()[0] if line.strip() else ""
        if name and not SANITIZER_LIBS.match(os.path.basename(name)):
            libs.add(os.path.basename(name))
    return libs


def check_manifest(occ):
    path = os.path.join(ROOT, "deploy", "gramine", "occ-serve.manifest.template")
    text = render_template(open(path).read())
    try:
        m = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        check(False, f"the rendered manifest is not TOML: {e}")
        return
    check(True, "the rendered manifest parses as TOML")
    sgx, loader, libos = m.get("sgx", {}), m.get("loader", {}), m.get("libos", {})
    check(sgx.get("remote_attestation") == "dcap", 'sgx.remote_attestation = "dcap"')
    check(sgx.get("debug") is False, "sgx.debug = false (clients refuse debug enclaves)")
    size = sgx.get("enclave_size", "")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    n = int(size[:-1]) * mult[size[-1]] if size[:-1].isdigit() and size[-1:] in mult else 0
    check(n and n & (n - 1) == 0, f"sgx.enclave_size {size!r} is a power of two")
    check(isinstance(sgx.get("max_threads"), int) and sgx["max_threads"] >= 8, "sgx.max_threads >= 8")
    check(isinstance(sgx.get("isvprodid"), int) and isinstance(sgx.get("isvsvn"), int), "sgx.isvprodid/isvsvn set")
    check(libos.get("entrypoint") == "/usr/local/bin/occ", "libos.entrypoint is occ")
    check(loader.get("entrypoint", {}).get("uri", "").startswith("file:"), "loader.entrypoint.uri")
    check("insecure__use_cmdline_argv" not in loader and "insecure__use_host_env" not in loader,
          "neither the host's command line nor its environment reaches the enclave")
    argv = loader.get("argv_src_file", "")
    trusted = [t if isinstance(t, str) else t.get("uri", "") for t in sgx.get("trusted_files", [])]
    allowed = sgx.get("allowed_files", [])
    check(argv and argv in trusted, "the argv file is a trusted (measured) file")
    check("file:/usr/local/bin/occ" in trusted, "the occ binary is trusted")
    check("file:/models/" in allowed and not any(t.startswith("file:/models") for t in trusted),
          "packs are allowed (untrusted) files, not trusted ones")
    mounts = m.get("fs", {}).get("mounts", [])
    shm = [x for x in mounts if x.get("type") == "untrusted_shm"]
    check(shm and shm[0].get("path") == "/dev/shm" and "dev:/dev/shm/" in allowed,
          "/dev/shm is untrusted shared memory, allowed")
    check(any(x.get("path") == "/models" for x in mounts), "/models is mounted")
    check(m.get("sys", {}).get("enable_sigterm_injection") is True, "SIGTERM from kubelet reaches occ serve")
    libdir = STUBS["arch_libdir"]
    trusted_libs = {os.path.basename(t[len("file:"):]) for t in trusted if t.startswith(f"file:{libdir}/")}
    if occ and os.path.exists(occ):
        libs = ldd_libs(occ)
        if check(libs is not None, f"ldd {occ}"):
            missing = sorted(libs - trusted_libs - GRAMINE_RUNTIME_LIBS)
            check(not missing, f"libraries of {os.path.relpath(occ, ROOT)} not in sgx.trusted_files: {missing}")
            note(f"{len(libs)} libraries of {os.path.relpath(occ, ROOT)} covered by the manifest")
    else:
        note("SKIP: no occ binary (make build): the trusted library list is not compared with ldd")


# ---------------------------------------------------------------- dockerfile

def check_dockerfile():
    path = os.path.join(ROOT, "deploy", "docker", "Dockerfile")
    lines = open(path).read().replace("\\\n", " ").splitlines()
    froms = [l.split()[1] for l in lines if l.startswith("FROM ")]
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(lines), re.M))
    froms = [args.get(f[2:-1], f) if f.startswith("${") else f for f in froms]
    check(froms and all(f.startswith("debian:12") for f in froms), f"every stage is Debian 12: {froms}")
    for l in lines:
        if l.startswith("COPY ") and "--from=" not in l:
            srcs = l.split()[1:-1]
            for s in srcs:
                check(os.path.exists(os.path.join(ROOT, s)), f"Dockerfile COPY source {s} exists")
    check(any("deploy/gramine/occ-serve.manifest.template" in l for l in lines),
          "the Dockerfile signs the checked manifest template")
    check(any("gramine-sgx-sign" in l for l in lines) and any("--mount=type=secret" in l for l in lines),
          "the signing key comes in as a build secret, never a layer")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--allow-no-kubectl", action="store_true",
                    help="without kubectl, check the YAML without rendering the kustomization")
    ap.add_argument("--occ", default=os.environ.get("OCC_BIN") or os.path.join(ROOT, "build", "release", "occ"),
                    help="the occ binary whose libraries the manifest must trust")
    a = ap.parse_args()
    docs, rendered = render_k8s(a.allow_no_kubectl)
    if docs is not None:
        check_k8s(docs, rendered)
    check_intel_root()
    check_manifest(a.occ)
    check_dockerfile()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
