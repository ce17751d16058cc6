"""An MLflow artifact repository for ``webhdfs://`` URIs, so MLflow artifacts live on HDFS.

MLflow's own ``hdfs://`` store needs libhdfs; this one speaks WebHDFS (pyhdfs) and is registered
through the ``mlflow.artifact_repository`` entry point. Point a tracking server's
``--default-artifact-root`` at ``webhdfs://namenode:http-port/path``, or at
``webhdfs://nameservice/path`` (``swebhdfs://`` for HTTPS) with ``$HADOOP_CONF_DIR`` set. It
authenticates as the rest of maggy does (:mod:`maggy.store.hdfs_auth`): Kerberos from the
ticket cache, or the workers' delegation token.
"""

from __future__ import annotations

import os
import posixpath
from urllib.parse import urlparse

from mlflow.entities import FileInfo
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from maggy.store.hdfs import HdfsStorage
from maggy.store.storage import storage_for


class WebHdfsArtifactRepository(ArtifactRepository):
    """Artifacts under ``webhdfs://host:port/root``."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        parsed = urlparse(artifact_uri)
        storage = storage_for(artifact_uri)
        assert isinstance(storage, HdfsStorage)  # the registry hands this class webhdfs:// and swebhdfs:// only
        self._hdfs = storage.client
        self._root = parsed.path.rstrip("/") or "/"

    def _abs(self, path: str | None) -> str:
        return posixpath.join(self._root, path) if path else self._root

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        dest = posixpath.join(self._abs(artifact_path), os.path.basename(local_file))
        with open(local_file, "rb") as f:
            self._hdfs.create(dest, f, overwrite=True)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        for folder, _, files in os.walk(local_dir):
            rel = os.path.relpath(folder, local_dir)
            sub = artifact_path if rel == "." else posixpath.join(artifact_path or "", *rel.split(os.sep))
            self._hdfs.mkdirs(self._abs(sub))
            for name in files:
                self.log_artifact(os.path.join(folder, name), sub)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        full = self._abs(path)
        if not self._hdfs.exists(full):
            return []
        status = self._hdfs.get_file_status(full)
        if status.type != "DIRECTORY":
            return []
        return [FileInfo(posixpath.join(path, s.pathSuffix) if path else s.pathSuffix, s.type == "DIRECTORY",
                         None if s.type == "DIRECTORY" else s.length)
                for s in self._hdfs.list_status(full)]

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        with self._hdfs.open(self._abs(remote_file_path)) as src, open(local_path, "wb") as dst:
            dst.write(src.read())

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        self._hdfs.delete(self._abs(artifact_path), recursive=True)


def _register() -> None:
    """Register the class for ``webhdfs://`` unless the entry point did. Imported before MLflow's
    plugin registry, this module is only half made when the registry loads the entry point
    (a circular import), and that registration fails; this one does not."""
    from mlflow.store.artifact import artifact_repository_registry as registry

    for scheme in ("webhdfs", "swebhdfs"):
        if scheme not in registry._artifact_repository_registry._registry:  # MLflow keeps no public lookup
            registry._artifact_repository_registry.register(scheme, WebHdfsArtifactRepository)


_register()
