"""The sandbox's ARM template function library, checked against the values Microsoft documents."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from strataflow.sandbox.arm_eval import Frame, Scope, check, evaluate
from strataflow.sandbox.arm_values import ExpressionError, Unsupported

SUB = "00000000-0000-4000-8000-000000000001"
TENANT = "00000000-0000-4000-8000-0000000000aa"
DOGS = [
    {"name": "Evie", "age": 5, "interests": ["Ball", "Frisbee"]},
    {"name": "Casper", "age": 3, "interests": ["Other dogs"]},
    {"name": "Indy", "age": 2, "interests": ["Butter"]},
    {"name": "Kira", "age": 8, "interests": ["Rubs"]},
]


def scope(parameters: dict[str, Any] | None = None, variables: dict[str, Any] | None = None) -> Scope:
    """A resource-group scope with fixed parameters, variables and clock."""
    return Scope(
        SUB,
        TENANT,
        "rg-test",
        "westeurope",
        parameters or {},
        variables or {},
        now=dt.datetime(2019, 3, 5, 17, 53, 18, tzinfo=dt.UTC),
    )


def ev(expression: str, *, site: str = "body", **values: Any) -> Any:
    """Evaluate one expression with ``parameters``/``variables`` keyword arguments."""
    return evaluate(expression, scope(values.get("parameters"), values.get("variables")), Frame(site=site))


class TestStringFunctions:
    """String functions return what the documentation's examples show."""

    def test_base64_round_trips_and_decodes_json_with_single_quotes(self) -> None:
        """base64('one, two, three') is b25lLCB0d28sIHRocmVl; base64ToJson reads {'one': 'a', 'two': 'b'}."""
        assert ev("[base64('one, two, three')]") == "b25lLCB0d28sIHRocmVl"
        assert ev("[base64ToString('b25lLCB0d28sIHRocmVl')]") == "one, two, three"
        assert ev("[base64ToJson(base64('{''one'': ''a'', ''two'': ''b''}'))]") == {"one": "a", "two": "b"}

    def test_data_uri_round_trip(self) -> None:
        """dataUri('Hello') is data:text/plain;charset=utf8;base64,SGVsbG8= and decodes back."""
        assert ev("[dataUri('Hello')]") == "data:text/plain;charset=utf8;base64,SGVsbG8="
        assert ev("[dataUriToString('data:;base64,SGVsbG8sIFdvcmxkIQ==')]") == "Hello, World!"

    def test_starts_and_ends_with_ignore_case(self) -> None:
        """startsWith('abcdef', 'AB') and endsWith('abcdef', 'EF') are true; 'e' is not an end."""
        assert ev("[startsWith('abcdef', 'AB')]") is True
        assert ev("[endsWith('abcdef', 'EF')]") is True
        assert ev("[endsWith('abcdef', 'e')]") is False

    def test_format_uses_dotnet_composite_formatting(self) -> None:
        """format('{0}, {1}. Formatted number: {2:N0}', 'Hello', 'User', 8175133) groups thousands."""
        assert ev("[format('{0}, {1}. Formatted number: {2:N0}', 'Hello', 'User', 8175133)]") == (
            "Hello, User. Formatted number: 8,175,133"
        )
        assert ev("[format('vm{0:D3}-{1:000}-{{x}}', 7, 42)]") == "vm007-042-{x}"

    def test_pad_left_replace_split_trim_and_case(self) -> None:
        """padLeft('123', 10, '0'), replace, split on several separators, trim, toUpper/toLower."""
        assert ev("[padLeft('123', 10, '0')]") == "0000000123"
        assert ev("[replace('123-123-1234', '-', '')]") == "1231231234"
        assert ev("[split('one;two,three', createArray(',', ';'))]") == ["one", "two", "three"]
        assert ev("[trim('    one two three   ')]") == "one two three"
        assert ev("[toUpper('One Two')]") == "ONE TWO"
        assert ev("[TOLOWER('One Two')]") == "one two"

    def test_substring_and_its_azure_error(self) -> None:
        """substring('one two three', 4, 3) is 'two'; out of range it fails with Azure's wording."""
        assert ev("[substring('one two three', 4, 3)]") == "two"
        with pytest.raises(ExpressionError, match="must refer to a location within the string"):
            ev("[substring('one two three', 10, 10)]")

    def test_string_of_each_type(self) -> None:
        """string() renders objects and arrays as compact JSON and booleans as True/False."""
        assert ev('[string(json(\'{"valueA": 10, "valueB": "Example Text"}\'))]') == (
            '{"valueA":10,"valueB":"Example Text"}'
        )
        assert ev("[string(createArray('a', 'b', 'c'))]") == '["a","b","c"]'
        assert ev("[string(5)]") == "5"
        assert ev("[string(true())]") == "True"

    def test_uri_and_uri_component(self) -> None:
        """uri() joins like .NET's Uri; uriComponent encodes and uriComponentToString decodes."""
        assert ev("[uri('http://contoso.com/resources/', 'nested/azuredeploy.json')]") == (
            "http://contoso.com/resources/nested/azuredeploy.json"
        )
        assert ev("[uri('http://contoso.com/resources/azuredeploy.json', 'other.json')]") == (
            "http://contoso.com/resources/other.json"
        )
        encoded = ev("[uriComponent('http://contoso.com/resources/nested/azuredeploy.json')]")
        assert encoded == "http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json"
        assert ev(f"[uriComponentToString('{encoded}')]") == "http://contoso.com/resources/nested/azuredeploy.json"

    def test_index_of_ignores_case_and_last_index_of(self) -> None:
        """indexOf('test', 'T') is 0, lastIndexOf('test', 't') is 3, a missing value is -1."""
        assert ev("[indexOf('test', 'T')]") == 0
        assert ev("[lastIndexOf('test', 't')]") == 3
        assert ev("[indexOf('abcdef', 'z')]") == -1
        assert ev("[indexOf(createArray('a', 'b'), 'b')]") == 1

    def test_unique_string_and_guid_are_deterministic(self) -> None:
        """uniqueString gives 13 lower-case characters, guid a GUID; both repeat for the same input."""
        first = ev("[uniqueString(resourceGroup().id)]")
        assert len(first) == 13 and first == first.lower() and first == ev("[uniqueString(resourceGroup().id)]")
        guid = ev("[guid(subscription().id, 'x')]")
        assert len(guid) == 36 and guid.count("-") == 4 and guid == ev("[guid(subscription().id, 'x')]")
        assert guid != ev("[guid(subscription().id, 'y')]")

    def test_join_and_concat(self) -> None:
        """join(array, ',') and concat of strings, numbers and arrays."""
        assert ev("[join(createArray('a', 'b', 'c'), ',')]") == "a,b,c"
        assert ev("[concat('prefix', '-', 5)]") == "prefix-5"
        assert ev("[concat(createArray('1', '2'), createArray('3'))]") == ["1", "2", "3"]


class TestArrayAndObjectFunctions:
    """Array and object functions match the documentation's outputs."""

    def test_contains_string_object_and_array(self) -> None:
        """Strings are case-sensitive, object keys are not, arrays compare values."""
        obj = {"one": "a", "two": "b", "three": "c"}
        assert ev("[contains('OneTwoThree', 'e')]") is True
        assert ev("[contains('OneTwoThree', 'z')]") is False
        assert ev("[contains('OneTwoThree', 'one')]") is False
        assert ev("[contains(parameters('o'), 'ONE')]", parameters={"o": obj}) is True
        assert ev("[contains(parameters('o'), 'four')]", parameters={"o": obj}) is False
        assert ev("[contains(createArray('one', 'two'), 'two')]") is True

    def test_create_object_and_array(self) -> None:
        """createObject builds the documented object; an odd argument count is refused."""
        assert ev("[createObject('intProp', 1, 'stringProp', 'abc', 'boolProp', true())]") == {
            "intProp": 1,
            "stringProp": "abc",
            "boolProp": True,
        }
        assert ev("[createArray(1, 2, 3)]") == [1, 2, 3]
        with pytest.raises(ExpressionError, match="even number"):
            ev("[createObject('a')]")

    def test_empty_first_last_length(self) -> None:
        """empty, first, last and length over arrays, strings and objects."""
        assert ev("[empty(createArray())]") is True
        assert ev("[empty(json('{}'))]") is True
        assert ev("[empty('')]") is True
        assert ev("[empty(null())]") is True
        assert ev("[first(createArray('one', 'two'))]") == "one"
        assert ev("[last('One Two Three')]") == "e"
        assert ev("[length(createArray('a', 'b', 'c'))]") == 3
        assert ev("[length('One Two Three')]") == 13
        assert ev('[length(json(\'{"a": 1, "b": 2, "c": 3, "d": 4}\'))]') == 4

    def test_intersection_of_objects_and_arrays(self) -> None:
        """The documented intersection example: common pairs and common items."""
        first, second = {"one": "a", "two": "b", "three": "c"}, {"one": "a", "two": "z", "three": "c"}
        assert ev("[intersection(parameters('a'), parameters('b'))]", parameters={"a": first, "b": second}) == {
            "one": "a",
            "three": "c",
        }
        arrays = {"a": ["one", "two", "three"], "b": ["two", "three"]}
        assert ev("[intersection(parameters('a'), parameters('b'))]", parameters=arrays) == ["two", "three"]

    def test_union_merges_nested_objects_but_not_arrays(self) -> None:
        """The documented deep-merge example: nested objects merge, nested arrays are replaced."""
        first = {"property": {"one": "a", "two": "b", "three": "c1"}, "nestedArray": [1, 2]}
        second = {"property": {"three": "c2", "four": "d", "five": "e"}, "nestedArray": [3, 4]}
        merged = ev("[union(parameters('a'), parameters('b'))]", parameters={"a": first, "b": second})
        assert merged == {
            "property": {"one": "a", "two": "b", "three": "c2", "four": "d", "five": "e"},
            "nestedArray": [3, 4],
        }
        arrays = {"a": [["one", "two"], ["three"]], "b": [["three"], ["four", "two"]]}
        assert ev("[union(parameters('a'), parameters('b'))]", parameters=arrays) == [
            ["one", "two"],
            ["three"],
            ["four", "two"],
        ]
        assert ev("[union(createArray('one', 'two', 'three'), createArray('three', 'four'))]") == [
            "one",
            "two",
            "three",
            "four",
        ]

    def test_items_are_sorted_by_key(self) -> None:
        """items() of {item002, item001} lists item001 first, as documented."""
        entities = {"item002": {"enabled": False}, "item001": {"enabled": True}}
        assert ev("[items(parameters('e'))]", parameters={"e": entities}) == [
            {"key": "item001", "value": {"enabled": True}},
            {"key": "item002", "value": {"enabled": False}},
        ]

    def test_json_of_each_documented_value(self) -> None:
        """json('null'), objects, strings, booleans, numbers, arrays and ARM's '.25'."""
        assert ev("[json('null')]") is None
        assert ev('[json(\'{"a": "b"}\')]') == {"a": "b"}
        assert ev("[json('\"test\"')]") == "test"
        assert ev("[json('true')]") is True
        assert ev("[json('3')]") == 3
        assert ev("[json('[1,2,3]')]") == [1, 2, 3]
        assert ev("[json('.25')]") == 0.25

    def test_range_skip_take_min_max(self) -> None:
        """range(1, 3), skip/take on arrays and strings, min/max of ints or an array."""
        assert ev("[range(1, 3)]") == [1, 2, 3]
        assert ev("[skip(createArray('one', 'two', 'three'), 2)]") == ["three"]
        assert ev("[take('one two three', 2)]") == "on"
        assert ev("[min(createArray(0, 3, 2, 5, 4))]") == 0
        assert ev("[max(0, 3, 2, 5, 4)]") == 5

    def test_try_get_object_keys_shallow_merge_flatten_index_from_end(self) -> None:
        """tryGet gives null for a missing key; objectKeys, shallowMerge, flatten, indexFromEnd."""
        obj = {"a": {"b": 1}}
        assert ev("[tryGet(parameters('o'), 'a', 'b')]", parameters={"o": obj}) == 1
        assert ev("[tryGet(parameters('o'), 'missing')]", parameters={"o": obj}) is None
        assert ev('[objectKeys(json(\'{"a": 1, "b": 2}\'))]') == ["a", "b"]
        assert ev('[shallowMerge(json(\'[{"a": {"x": 1}}, {"a": {"y": 2}, "b": 3}]\'))]') == {
            "a": {"y": 2},
            "b": 3,
        }
        assert ev("[flatten(json('[[1, 2], [3]]'))]") == [1, 2, 3]
        assert ev("[indexFromEnd(createArray('a', 'b', 'c'), 1)]") == "c"
        assert ev("[tryIndexFromEnd(createArray('a'), 5)]") is None

    def test_property_access_ignores_case(self) -> None:
        """Properties are read case-insensitively; a missing one names the available ones."""
        assert ev("[parameters('o').NAME]", parameters={"o": {"name": "x"}}) == "x"
        with pytest.raises(ExpressionError, match="property 'nope' doesn't exist, available properties are 'name'"):
            ev("[parameters('o').nope]", parameters={"o": {"name": "x"}})


class TestLogicalAndNumericFunctions:
    """Comparison, logical and numeric functions, including laziness."""

    def test_if_evaluates_only_the_branch_taken(self) -> None:
        """The untaken branch may be an error (a missing parameter) without failing."""
        assert ev("[if(true(), 'yes', parameters('missing'))]") == "yes"
        assert ev("[if(equals(1, 2), reference('nothing').x, 'no')]") == "no"
        with pytest.raises(ExpressionError, match="'missing' is not found"):
            ev("[if(false(), 'yes', parameters('missing'))]")

    def test_and_or_take_many_arguments_and_stop_early(self) -> None:
        """and/or are variadic and stop at the deciding argument."""
        assert ev("[and(true(), true(), true())]") is True
        assert ev("[and(true(), false(), parameters('missing'))]") is False
        assert ev("[or(false(), false(), true())]") is True
        assert ev("[or(true(), parameters('missing'))]") is True
        assert ev("[not(equals(1, 2))]") is True

    def test_coalesce_equals_and_comparisons(self) -> None:
        """coalesce skips nulls; equals is deep; less/greater compare ints and strings."""
        assert ev("[coalesce(null(), null(), 'default')]") == "default"
        assert ev("[equals(createArray('a', 'b'), createArray('a', 'b'))]") is True
        assert ev("[equals('a', 'A')]") is False
        assert ev("[equals(1, '1')]") is False
        assert ev("[greater(10, 5)]") is True
        assert ev("[lessOrEquals('a', 'b')]") is True
        with pytest.raises(ExpressionError, match="both be integers or both be strings"):
            ev("[less(1, 'a')]")

    def test_arithmetic_truncates_like_dotnet(self) -> None:
        """div and mod truncate toward zero; int/float/bool convert strings."""
        assert ev("[add(5, 3)]") == 8
        assert ev("[sub(7, 3)]") == 4
        assert ev("[mul(5, 3)]") == 15
        assert ev("[div(8, 3)]") == 2
        assert ev("[div(-7, 2)]") == -3
        assert ev("[mod(-7, 3)]") == -1
        assert ev("[int('4')]") == 4
        assert ev("[float('2.5')]") == 2.5
        assert ev("[bool('TRUE')]") is True
        with pytest.raises(ExpressionError, match="divide by zero"):
            ev("[div(1, 0)]")


class TestDateFunctions:
    """Date functions use .NET formats and ISO 8601 durations."""

    def test_utc_now_formats_in_a_parameter_default(self) -> None:
        """utcNow(), utcNow('d') and utcNow('M d') as in the documentation."""
        assert ev("[utcNow()]", site="default") == "20190305T175318Z"
        assert ev("[utcNow('d')]", site="default") == "03/05/2019"
        assert ev("[utcNow('M d')]", site="default") == "3 5"
        assert ev("[utcNow('u')]", site="default") == "2019-03-05 17:53:18Z"

    def test_utc_now_outside_a_parameter_default_is_refused(self) -> None:
        """Anywhere but a parameter's default value, utcNow fails as in Azure."""
        with pytest.raises(ExpressionError, match="'utcNow' is not expected at this location"):
            ev("[utcNow()]")
        with pytest.raises(ExpressionError, match="'newGuid' is not expected at this location"):
            ev("[newGuid()]", site="variable")

    def test_date_time_add_documented_examples(self) -> None:
        """Adding P3Y, -P9D and PT1H to 2020-04-07 14:53:14Z gives the documented results."""
        base = "2020-04-07 14:53:14Z"
        assert ev(f"[dateTimeAdd('{base}', 'P3Y')]") == "4/7/2023 2:53:14 PM"
        assert ev(f"[dateTimeAdd('{base}', '-P9D')]") == "3/29/2020 2:53:14 PM"
        assert ev(f"[dateTimeAdd('{base}', 'PT1H')]") == "4/7/2020 3:53:14 PM"

    def test_date_time_add_keeps_an_iso_layout_and_takes_a_format(self) -> None:
        """An ISO base keeps its layout; an explicit format wins; a bad duration is refused."""
        assert ev("[dateTimeAdd('2020-01-31T10:00:00Z', 'P1M')]") == "2020-02-29T10:00:00Z"
        assert ev("[dateTimeAdd('20190305T175318Z', 'PT1H30M')]") == "20190305T192318Z"
        assert ev("[dateTimeAdd('2020-04-07T14:53:14Z', 'P1D', 'yyyy-MM-dd')]") == "2020-04-08"
        with pytest.raises(ExpressionError, match="not a valid ISO 8601 duration"):
            ev("[dateTimeAdd('2020-04-07T14:53:14Z', '1 day')]")

    def test_epoch_conversions(self) -> None:
        """dateTimeToEpoch and dateTimeFromEpoch invert each other."""
        assert ev("[dateTimeToEpoch('2023-05-02T15:16:13Z')]") == 1683040573
        assert ev("[dateTimeFromEpoch(1683040573)]") == "2023-05-02T15:16:13Z"


class TestLambdaFunctions:
    """Lambda functions over the documentation's dogs."""

    def test_filter_map_reduce_sort(self) -> None:
        """Old dogs are Evie and Kira; map, reduce and sort as documented."""
        p = {"dogs": DOGS}
        old = ev(
            "[filter(parameters('dogs'), lambda('dog', greaterOrEquals(lambdaVariables('dog').age, 5)))]", parameters=p
        )
        assert [d["name"] for d in old] == ["Evie", "Kira"]
        names = ev("[map(parameters('dogs'), lambda('dog', lambdaVariables('dog').name))]", parameters=p)
        assert names == ["Evie", "Casper", "Indy", "Kira"]
        indexed = ev(
            "[map(parameters('dogs'), lambda('dog', 'i', format('{0}:{1}', lambdaVariables('i'), lambdaVariables('dog').name)))]",
            parameters=p,
        )
        assert indexed[1] == "1:Casper"
        total = ev(
            "[reduce(parameters('dogs'), 0, lambda('cur', 'next', add(lambdaVariables('cur'), lambdaVariables('next').age)))]",
            parameters=p,
        )
        assert total == 18
        by_age = ev(
            "[sort(parameters('dogs'), lambda('a', 'b', less(lambdaVariables('a').age, lambdaVariables('b').age)))]",
            parameters=p,
        )
        assert [d["name"] for d in by_age] == ["Indy", "Casper", "Evie", "Kira"]

    def test_to_object_group_by_map_values(self) -> None:
        """toObject keys by name, groupBy groups by first letter, mapValues transforms values."""
        p = {"dogs": DOGS}
        ages = ev(
            "[toObject(parameters('dogs'), lambda('d', lambdaVariables('d').name), lambda('d', lambdaVariables('d').age))]",
            parameters=p,
        )
        assert ages == {"Evie": 5, "Casper": 3, "Indy": 2, "Kira": 8}
        groups = ev("[groupBy(createArray('foo', 'bar', 'baz'), lambda('x', substring(lambdaVariables('x'), 0, 1)))]")
        assert groups == {"f": ["foo"], "b": ["bar", "baz"]}
        assert ev("[mapValues(json('{\"a\": \"x\"}'), lambda('v', toUpper(lambdaVariables('v'))))]") == {"a": "X"}

    def test_a_lambda_outside_its_functions_is_refused(self) -> None:
        """lambda() alone is an error naming the functions that take one."""
        with pytest.raises(ExpressionError, match="can only be an argument of filter"):
            ev("[lambda('x', lambdaVariables('x'))]")


class TestDeploymentAndScopeFunctions:
    """Ids, scopes, environment and CIDR functions."""

    def test_resource_ids_in_every_form(self) -> None:
        """resourceId with and without subscription/group, child types, subscription and tenant ids."""
        group = f"/subscriptions/{SUB}/resourceGroups/rg-test"
        assert ev("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'a')]") == (
            f"{group}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/a"
        )
        assert ev("[resourceId('other', 'Microsoft.Storage/storageAccounts', 'sa')]") == (
            f"/subscriptions/{SUB}/resourceGroups/other/providers/Microsoft.Storage/storageAccounts/sa"
        )
        assert ev("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'r')]") == (
            f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/r"
        )
        assert ev("[tenantResourceId('Microsoft.Management/managementGroups', 'mg')]") == (
            "/providers/Microsoft.Management/managementGroups/mg"
        )
        assert ev("[extensionResourceId(resourceGroup().id, 'Microsoft.Authorization/locks', 'l')]") == (
            f"{group}/providers/Microsoft.Authorization/locks/l"
        )

    def test_scope_objects_and_environment(self) -> None:
        """resourceGroup(), subscription(), tenant() and environment() carry Azure's fields."""
        assert ev("[resourceGroup().location]") == "westeurope"
        assert ev("[subscription().subscriptionId]") == SUB
        assert ev("[tenant().tenantId]") == TENANT
        assert ev("[environment().suffixes.storage]") == "core.windows.net"
        assert ev("[environment().authentication.loginEndpoint]") == "https://login.microsoftonline.com/"

    def test_cidr_functions(self) -> None:
        """cidrSubnet, cidrHost and parseCidr on 10.144.0.0/20."""
        assert ev("[cidrSubnet('10.144.0.0/20', 24, 3)]") == "10.144.3.0/24"
        assert ev("[cidrHost('10.144.3.0/24', 3)]") == "10.144.3.4"
        parsed = ev("[parseCidr('10.144.0.0/20')]")
        assert parsed["netmask"] == "255.255.240.0" and parsed["broadcast"] == "10.144.15.255"
        assert parsed["firstUsable"] == "10.144.0.1" and parsed["cidr"] == 20

    def test_copy_index_outside_a_loop_is_refused(self) -> None:
        """copyIndex() needs a copy loop."""
        with pytest.raises(ExpressionError, match="'copyIndex' is not expected at this location"):
            ev("[copyIndex()]")

    def test_management_group_is_unsupported_not_invalid(self) -> None:
        """A real Azure function the sandbox lacks says so, with SandboxUnsupported."""
        with pytest.raises(Unsupported, match="is not supported by the strataflow sandbox") as refused:
            ev("[managementGroup()]")
        assert refused.value.code == "SandboxUnsupported"


class TestErrors:
    """Unknown functions and wrong arities use Azure's wording."""

    def test_an_unknown_function_is_not_valid(self) -> None:
        """Only functions Azure lacks get 'The template function ... is not valid'."""
        with pytest.raises(ExpressionError, match="The template function 'nope' is not valid"):
            check("[nope()]")
        check("[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'sa'), '2023-01-01').keys[0].value]")

    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            ("[length()]", "Unable to evaluate template language function 'length'. At least one parameter"),
            ("[length('a', 'b')]", "function 'length'. This function takes exactly 1 parameter."),
            ("[if(true(), 1)]", "function 'if'. This function takes exactly 3 parameters."),
            ("[true(1)]", "function 'true'. This function does not take any parameters."),
            ("[substring()]", "function 'substring'. At least 1 parameter should be provided."),
        ],
    )
    def test_wrong_arity_is_refused_with_azures_wording(self, expression: str, message: str) -> None:
        """Too few or too many arguments name the function and its arity."""
        with pytest.raises(ExpressionError, match=message):
            ev(expression)

    def test_wrong_types_name_the_type(self) -> None:
        """A string function given an int names both types."""
        with pytest.raises(ExpressionError, match="type 'Integer' is not valid: expected 'String'"):
            ev("[toUpper(1)]")

    def test_escaped_brackets_are_literals(self) -> None:
        """'[[' escapes a literal '['."""
        assert ev("[[not an expression]") == "[not an expression]"
        assert json.loads(json.dumps(ev("[createArray('[x]')]"))) == ["[x]"]
