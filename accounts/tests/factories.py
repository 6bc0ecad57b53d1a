"""factory_boy factories for identity data."""

import factory
from factory.django import DjangoModelFactory

from accounts.models import Group, Membership, Organization, Role, User

PASSWORD = "correct-horse-battery-staple-42"


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    tier = Organization.Tier.PRO


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    name = factory.LazyAttribute(lambda u: u.username.title())
    password = factory.django.Password(PASSWORD)


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.USER


class GroupFactory(DjangoModelFactory):
    class Meta:
        model = Group

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"group-{n}")
    permissions = factory.LazyFunction(list)
