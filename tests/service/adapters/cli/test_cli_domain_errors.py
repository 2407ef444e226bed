"""Domain errors in the CLI: one map (service.adapters.cli.common.as_cli_error) gives their exit code and line;
the offline proxy check raises a domain error, not the CLI's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from service.adapters.cli.common import EXIT_INPUT, EXIT_UNAVAILABLE, as_cli_error
from service.certification.errors import InvalidInputError, ServiceError
from service.features.proxy.offline import operator_template

if TYPE_CHECKING:
    from service.certification.contract import Certifier


@pytest.mark.parametrize(
    ("error", "exit_code", "line"),
    [
        (ServiceError("SESSION_STATE", "session is decided"), EXIT_INPUT, "SESSION_STATE: session is decided"),
        (ServiceError("DB_UNAVAILABLE"), EXIT_UNAVAILABLE, "DB_UNAVAILABLE: 服务暂时不可用,请稍后再试"),
    ],
)
def test_a_domain_error_gets_its_exit_code_and_line(error: ServiceError, exit_code: int, line: str) -> None:
    cli = as_cli_error(error)
    assert (cli.exit_code, str(cli), cli.code) == (exit_code, line, error.code)


def test_a_missing_operator_video_is_a_domain_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "operator.mp4"
    with pytest.raises(InvalidInputError) as e:
        operator_template(cast("Certifier", object()), missing)  # refused before the certifier is used
    assert (e.value.code, e.value.detail) == ("FILE_NOT_FOUND", f"{missing}: no such file")
    assert as_cli_error(e.value).exit_code == EXIT_INPUT
