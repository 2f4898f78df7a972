"""kubeemu: a Kubernetes API server emulator (plain HTTP on 127.0.0.1) for refwarden's tests.

Modules, one concern each:

- ``util``         errors as ``metav1.Status``, timestamps, JSON/YAML decoding
- ``fieldpath``    field paths and sets, ``fieldsV1`` encoding (structured-merge-diff's model)
- ``typeschema``   merge structure of objects (built-in kinds and CRD schemas) for SSA and SMP
- ``ssa``          server-side apply: ownership, apply/update, conflicts, ``managedFields``
- ``patch``        JSON merge patch, JSON patch, strategic merge patch
- ``crdschema``    structural schema of custom resources: pruning, defaulting, validation
- ``selectors``    label and field selectors
- ``resources``    the resource table (built-ins and CRD-defined) and discovery documents
- ``strategies``   per-kind rules (defaults, status reset, generation, validation)
- ``store``        objects, the global resourceVersion, history, snapshots, watch fan-out
- ``watch``        one watch stream: initial events, filtering, bookmarks, timeout
- ``rbac``         bearer-token authentication and RBAC authorization with a decision log
- ``api``          request routing and the verbs (get/list/watch/create/update/patch/delete)
- ``control``      the ``/_emulator/...`` control API for test harnesses
- ``table``        ``meta.k8s.io/v1`` Table output for kubectl
- ``server``       the HTTP/1.1 server (keep-alive, chunked watches, clean shutdown)
"""
