"""The server-rendered sign-in pages (English, Russian, Kazakh): no script, no CDN; styles
inline under a nonce, the QR code an inline image, so the page makes no other request."""

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

LANGUAGES = {"en": "English", "ru": "Русский", "kk": "Қазақша"}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "heading": "Sign in to NRM Exchange",
        "username": "Username",
        "password": "Password",
        "otp": "One-time code",
        "submit": "Sign in",
        "otp_hint": "Enter the six-digit code from your authenticator app, or a recovery code.",
        "wrong_password": "Wrong username or password.",
        "wrong_code": "Wrong or already used code.",
        "throttled": "Too many failed attempts. Try again in {seconds} seconds.",
        "expired": "The sign-in form expired. Please sign in again.",
        "enrol_heading": "Set up your second factor",
        "enrol_hint": "Scan this QR code with an authenticator app (or type in the key below),"
        " then enter the code it shows.",
        "qr_alt": "QR code for your authenticator app",
        "secret_label": "Key",
        "recovery_heading": "Your recovery codes",
        "recovery_hint": "Each code signs you in once if you lose your authenticator. Store"
        " them safely now: they will not be shown again.",
        "continue": "Continue",
        "signed_out_heading": "Signed out",
        "signed_out": "You are signed out.",
        "error_heading": "This sign-in request cannot be served",
        "language": "Language",
    },
    "ru": {
        "heading": "Вход в NRM Exchange",
        "username": "Имя пользователя",
        "password": "Пароль",
        "otp": "Одноразовый код",
        "submit": "Войти",
        "otp_hint": "Введите шестизначный код из приложения-аутентификатора или код"
        " восстановления.",
        "wrong_password": "Неверное имя пользователя или пароль.",
        "wrong_code": "Неверный или уже использованный код.",
        "throttled": "Слишком много неудачных попыток. Повторите через {seconds} с.",
        "expired": "Форма входа устарела. Войдите снова.",
        "enrol_heading": "Настройка второго фактора",
        "enrol_hint": "Отсканируйте QR-код приложением-аутентификатором (или введите ключ"
        " ниже), затем введите показанный код.",
        "qr_alt": "QR-код для приложения-аутентификатора",
        "secret_label": "Ключ",
        "recovery_heading": "Ваши коды восстановления",
        "recovery_hint": "Каждый код позволяет войти один раз, если вы потеряете"
        " аутентификатор. Сохраните их сейчас: больше они показаны не будут.",
        "continue": "Продолжить",
        "signed_out_heading": "Выход выполнен",
        "signed_out": "Вы вышли из системы.",
        "error_heading": "Этот запрос на вход не может быть выполнен",
        "language": "Язык",
    },
    "kk": {
        "heading": "NRM Exchange жүйесіне кіру",
        "username": "Пайдаланушы аты",
        "password": "Құпиясөз",
        "otp": "Бір реттік код",
        "submit": "Кіру",
        "otp_hint": "Аутентификатор қолданбасындағы алты таңбалы кодты немесе қалпына"
        " келтіру кодын енгізіңіз.",
        "wrong_password": "Пайдаланушы аты немесе құпиясөз қате.",
        "wrong_code": "Код қате немесе бұрын қолданылған.",
        "throttled": "Сәтсіз әрекеттер тым көп. {seconds} секундтан кейін қайталаңыз.",
        "expired": "Кіру формасының мерзімі өтті. Қайта кіріңіз.",
        "enrol_heading": "Екінші факторды баптау",
        "enrol_hint": "QR кодты аутентификатор қолданбасымен сканерлеңіз (немесе төмендегі"
        " кілтті енгізіңіз), содан кейін көрсетілген кодты енгізіңіз.",
        "qr_alt": "Аутентификатор қолданбасына арналған QR код",
        "secret_label": "Кілт",
        "recovery_heading": "Қалпына келтіру кодтары",
        "recovery_hint": "Аутентификаторды жоғалтсаңыз, әр код бір рет кіруге мүмкіндік"
        " береді. Оларды қазір сақтаңыз: қайта көрсетілмейді.",
        "continue": "Жалғастыру",
        "signed_out_heading": "Жүйеден шықтыңыз",
        "signed_out": "Сіз жүйеден шықтыңыз.",
        "error_heading": "Бұл кіру сұрауын орындау мүмкін емес",
        "language": "Тіл",
    },
}

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["j2", "html"]),
)


def language(request: Request) -> str:
    """`lang` or OpenID Connect's `ui_locales`, else Accept-Language, else English."""
    asked = [request.query_params.get("lang", "")]
    asked += request.query_params.get("ui_locales", "").split()
    asked += [
        part.split(";")[0].strip() for part in request.headers.get("accept-language", "").split(",")
    ]
    for tag in asked:
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return "en"


def _with_lang(request: Request, lang: str) -> str:
    query = [(k, v) for k, v in parse_qsl(request.url.query) if k != "lang"]
    return f"{request.url.path}?{urlencode([*query, ('lang', lang)])}"


def render(
    request: Request,
    *,
    step: str,
    status: int = 200,
    heading: str | None = None,
    error: str | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    lang = language(request)
    t = TEXT[lang]
    nonce = secrets.token_urlsafe(16)
    html = _env.get_template("signin.html.j2").render(
        lang=lang,
        t=t,
        nonce=nonce,
        step=step,
        heading=heading or t["heading"],
        error=error,
        languages=[(code, name, _with_lang(request, code)) for code, name in LANGUAGES.items()],
        username=context.pop("username", ""),
        **context,
    )
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={"Content-Security-Policy": policy, **(headers or {})},
    )


def text(request: Request, name: str, **values: Any) -> str:
    return TEXT[language(request)][name].format(**values)
