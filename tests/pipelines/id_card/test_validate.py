"""ID number checks (format, MOD 11-2, region, date) and the cross-checks with the printed fields."""

from __future__ import annotations

import datetime as dt

from stdnum.cn import ric

from pipelines.id_card.validate import correct_address, cross_check
from pipelines.idnumber import check_number


def test_valid_number_from_shared_labels() -> None:
    # 420106 (武昌区) was created in 1983, after this 1941 birth; stdnum's own validate() rejects it, we must not.
    chk = check_number("420106194107214691")
    assert chk.valid
    assert chk.birth_date == dt.date(1941, 7, 21)
    assert chk.sex == "男"
    assert chk.region is not None and chk.region.startswith("湖北省")


def test_check_digit_x_and_every_single_digit_error_is_caught() -> None:
    good = "61011319351004747X"
    assert check_number(good).valid
    for pos in range(17):
        for d in "0123456789":
            if d == good[pos]:
                continue
            bad = good[:pos] + d + good[pos + 1 :]
            assert not check_number(bad).checksum_ok, bad


def test_checksum_agrees_with_stdnum() -> None:
    body = "11010119360420775"
    assert check_number(body + ric.calc_check_digit(body + "0")).checksum_ok


def test_format_region_and_date_problems() -> None:
    assert not check_number("12345").format_ok
    assert not check_number("4201061941072146AB").format_ok
    assert not check_number(None).format_ok
    unknown_region = "999999194107210000"
    unknown_region = unknown_region[:17] + ric.calc_check_digit(unknown_region)
    chk = check_number(unknown_region)
    assert chk.checksum_ok and not chk.region_ok and "region" in chk.problems
    bad_date = "420106194113214690"
    bad_date = bad_date[:17] + ric.calc_check_digit(bad_date)
    chk = check_number(bad_date)
    assert chk.checksum_ok and not chk.date_ok and not chk.valid


def test_future_birth_date_is_invalid() -> None:
    body = "42010620990101001"
    assert not check_number(body + ric.calc_check_digit(body + "0"), today=dt.date(2026, 1, 1)).date_ok


def test_cross_checks_birth_and_sex() -> None:
    chk = check_number("420106194107214691")  # male, 1941-07-21
    assert cross_check(chk, dt.date(1941, 7, 21), "男") == []
    assert cross_check(chk, dt.date(1941, 7, 22), "男") == ["birth_date"]
    assert cross_check(chk, dt.date(1941, 7, 21), "女") == ["sex"]
    assert cross_check(chk, None, None) == []


def test_address_place_names_corrected_from_the_number_region() -> None:
    # 420505 is 湖北省宜昌市猇亭区: a dropped rare character is restored, nothing else is touched.
    fixed, fixes = correct_address("湖北省宜昌市亭区新华东路151号", "420505195001011234")
    assert fixed == "湖北省宜昌市猇亭区新华东路151号" and fixes == ["亭区→猇亭区"]
    fixed, _ = correct_address("江苏省南京市漂水区红旗北街265号", "320117195001011234")
    assert fixed == "江苏省南京市溧水区红旗北街265号"
    # Correct addresses, and addresses outside the number's region, stay as read.
    shanghai = "上海市徐汇区漕溪北路239弄26号"
    assert correct_address(shanghai, "310104194203058336") == (shanghai, [])
    assert correct_address("北京市东城区景山前街4号", "420505195001011234")[1] == []
