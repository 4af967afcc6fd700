from __future__ import annotations

import dataclasses

import pytest

from conveyor import ExecutionContext, Runner, Task, TaskIdentifier
from conveyor.core.identifiers import parse_version, routing_key, slugify, validate_slug
from conveyor.core.task import is_executable, task_identifier


class TestTaskClasses:
    def test_subclasses_become_dataclasses_with_positional_constructor(self) -> None:
        class Resize(Task):
            path: str
            width: int = 100

            def execute(self, context: ExecutionContext) -> None: ...

        task = Resize("a.png", 20)
        assert dataclasses.is_dataclass(task)
        assert (task.path, task.width) == ("a.png", 20)
        assert Resize("b.png") == Resize("b.png", 100)

    def test_default_identifier_is_class_name_at_v0_0(self) -> None:
        class Plain(Task):
            def execute(self, context: ExecutionContext) -> None: ...

        assert task_identifier(Plain) == TaskIdentifier("Plain", "v0.0")

    def test_custom_identifier(self) -> None:
        class Custom(Task):
            @staticmethod
            def identifier() -> tuple[str, str]:
                return "tilebox.com/example/Custom", "v2.3"

            def execute(self, context: ExecutionContext) -> None: ...

        ident = task_identifier(Custom())
        assert (ident.name, ident.version, ident.major, ident.minor) == (
            "tilebox.com/example/Custom",
            "v2.3",
            2,
            3,
        )

    @pytest.mark.parametrize(
        "version", ["", "3.2", "v3.2.1", "v3", "v3.", "something-else", "V1.0"]
    )
    def test_invalid_versions_fail_at_class_definition(self, version: str) -> None:
        with pytest.raises(TypeError, match="Invalid version string"):

            class Bad(Task):
                @staticmethod
                def identifier() -> tuple[str, str]:
                    return "Bad", version

    @pytest.mark.parametrize(
        ("name", "message"), [("", "task name is required"), ("x" * 257, "too long")]
    )
    def test_invalid_names_fail_at_class_definition(self, name: str, message: str) -> None:
        with pytest.raises(TypeError, match=message):

            class Bad(Task):
                @staticmethod
                def identifier() -> tuple[str, str]:
                    return name, "v1.0"

    def test_identifier_must_return_two_strings(self) -> None:
        with pytest.raises(TypeError, match="tuple of two strings"):

            class Bad(Task):
                @staticmethod
                def identifier() -> tuple[str, str]:
                    return ("only-one",)  # type: ignore[return-value]

    def test_identifier_must_be_callable_without_arguments(self) -> None:
        with pytest.raises(TypeError, match=r"Failed to invoke Bad\.identifier"):

            class Bad(Task):
                def identifier(self) -> tuple[str, str]:  # type: ignore[override]
                    return "Bad", "v1.0"

    def test_execute_must_take_self_and_context(self) -> None:
        with pytest.raises(TypeError, match="def execute\\(self, context\\)"):

            class Bad(Task):
                def execute(self) -> None:  # type: ignore[override]
                    ...

        with pytest.raises(TypeError, match="def execute\\(self, context\\)"):

            class Worse(Task):
                def execute(self, context: ExecutionContext, extra: int) -> None:  # type: ignore[override]
                    ...

    def test_a_class_without_execute_is_a_base_but_cannot_be_registered(self) -> None:
        class Base(Task):
            value: int

        class Concrete(Base):
            def execute(self, context: ExecutionContext) -> None: ...

        assert not is_executable(Base) and is_executable(Concrete)
        assert Concrete(3).value == 3
        with pytest.raises(ValueError, match="not executable"):
            Runner([Base])

    def test_async_execute_is_allowed(self) -> None:
        class Async(Task):
            async def execute(self, context: ExecutionContext) -> None: ...

        assert is_executable(Async)


class TestRunnerRegistry:
    def make(self, name: str, version: str) -> type[Task]:
        def execute(self: Task, context: ExecutionContext) -> None: ...

        return type(
            f"T{version.replace('.', '_')}",
            (Task,),
            {"identifier": staticmethod(lambda: (name, version)), "execute": execute},
        )

    def test_duplicate_registration_is_rejected(self) -> None:
        first, again = self.make("A", "v1.0"), self.make("A", "v1.0")
        runner = Runner([first])
        with pytest.raises(ValueError, match="Duplicate task identifier"):
            runner.register(again)

    def test_resolves_the_highest_compatible_minor(self) -> None:
        v1_1, v1_3, v2_0 = self.make("A", "v1.1"), self.make("A", "v1.3"), self.make("A", "v2.0")
        runner = Runner([v1_1, v1_3, v2_0])
        assert runner.resolve(TaskIdentifier("A", "v1.0")) is v1_3
        assert runner.resolve(TaskIdentifier("A", "v1.2")) is v1_3
        assert runner.resolve(TaskIdentifier("A", "v1.4")) is None
        assert runner.resolve(TaskIdentifier("A", "v2.0")) is v2_0
        assert runner.resolve(TaskIdentifier("B", "v1.0")) is None
        assert [(r.name, r.major, r.max_minor) for r in runner.registered()] == [
            ("A", 1, 3),
            ("A", 2, 0),
        ]

    def test_only_task_classes_register(self) -> None:
        with pytest.raises(TypeError, match="Task subclass"):
            Runner([int])  # type: ignore[list-item]


class TestIdentifiers:
    @pytest.mark.parametrize(
        ("runner", "submitted", "ok"),
        [
            ("v1.3", "v1.3", True),
            ("v1.5", "v1.3", True),
            ("v1.2", "v1.3", False),
            ("v2.5", "v1.3", False),
            ("v0.0", "v0.0", True),
        ],
    )
    def test_version_rule(self, runner: str, submitted: str, ok: bool) -> None:
        assert TaskIdentifier("A", runner).can_run(TaskIdentifier("A", submitted)) is ok
        assert not TaskIdentifier("B", runner).can_run(TaskIdentifier("A", submitted))

    def test_parse_version(self) -> None:
        assert parse_version("v10.22") == (10, 22)
        with pytest.raises(ValueError, match="Invalid version string"):
            parse_version("10.22")

    def test_routing_keys_are_short_literal_and_distinct(self) -> None:
        names = ["a.b", "a*b", "#", "ü" * 256, "a.b.", "A.b"]
        keys = {routing_key(n, 1, 0) for n in names}
        assert len(keys) == len(names)
        for key in keys:
            assert "*" not in key and "#" not in key and len(key.encode()) <= 255
        assert routing_key("a", 1, 0) != routing_key("a", 1, 1) != routing_key("a", 2, 1)

    def test_slugs(self) -> None:
        assert slugify("GPU Machines (EU)") == "gpu-machines-eu"
        assert validate_slug("gpu-eu-1") == "gpu-eu-1"
        for bad in ["", "-gpu", "GPU", "a_b", "x" * 64]:
            with pytest.raises(ValueError, match="Invalid cluster slug"):
                validate_slug(bad)
