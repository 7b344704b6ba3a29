"""The residents' forms (CSRF-protected by Flask-WTF)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length, Regexp

LANGUAGE_NAMES = {"nl": "Nederlands", "en": "English"}


class SubscribeForm(FlaskForm):
    """Number and age; the areas and the language (checkboxes and radios built from the
    database and the configuration) are read and checked by the view."""

    phone = StringField(_l("Mobile number"), validators=[
        DataRequired(_l("Fill in your mobile number.")), Length(max=40)])
    age = BooleanField(_l("I am 16 years or older."), validators=[
        DataRequired(_l("You can sign up from 16 years of age."))])


class StopForm(FlaskForm):
    phone = StringField(_l("Mobile number"), validators=[
        DataRequired(_l("Fill in your mobile number.")), Length(max=40)])


class ConfirmForm(FlaskForm):
    code = StringField(_l("Code from the text message"), validators=[
        DataRequired(_l("Fill in the code.")),
        Regexp(r"^\s*\d{6}\s*$", message=_l("The code has six digits."))])
