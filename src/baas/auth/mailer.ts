/**
 * E-mail of the auth module through SMTP (nodemailer): confirmation, magic link, recovery, e-mail change, each with
 * the link and the 6-digit code, as GoTrue's default templates. Without AUTH_SMTP_URL nothing is sent; the caller
 * records the mail in the audit log instead.
 */
import nodemailer, { type Transporter } from 'nodemailer';

export type MailKind = 'confirmation' | 'magiclink' | 'recovery' | 'email_change' | 'invite';

export interface Mail {
  kind: MailKind;
  to: string;
  link: string;
  otp: string;
}

const SUBJECTS: Record<MailKind, string> = {
  confirmation: 'Confirm Your Signup',
  magiclink: 'Your Magic Link',
  recovery: 'Reset Your Password',
  email_change: 'Confirm Email Change',
  invite: 'You have been invited',
};

const LEADS: Record<MailKind, string> = {
  confirmation: 'Follow this link to confirm your user:',
  magiclink: 'Follow this link to login:',
  recovery: 'Follow this link to reset the password for your user:',
  email_change: 'Follow this link to confirm the update of your email:',
  invite: 'You have been invited to create a user. Follow this link to accept the invite:',
};

export function renderMail(mail: Mail): { subject: string; text: string; html: string } {
  const subject = SUBJECTS[mail.kind];
  const text = `${subject}\n\n${LEADS[mail.kind]}\n${mail.link}\n\nAlternatively, enter the code: ${mail.otp}\n`;
  const html = `<h2>${subject}</h2>\n<p>${LEADS[mail.kind]}</p>\n<p><a href="${escapeHtml(mail.link)}">${escapeHtml(mail.link)}</a></p>\n<p>Alternatively, enter the code: ${mail.otp}</p>\n`;
  return { subject, text, html };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class Mailer {
  private readonly transport: Transporter | null;

  constructor(
    smtpUrl: string | null,
    private readonly sender: string,
  ) {
    this.transport = smtpUrl === null ? null : nodemailer.createTransport(smtpUrl);
  }

  get enabled(): boolean {
    return this.transport !== null;
  }

  async send(mail: Mail): Promise<void> {
    if (this.transport === null) return;
    const { subject, text, html } = renderMail(mail);
    await this.transport.sendMail({ from: this.sender, to: mail.to, subject, text, html });
  }

  close(): void {
    this.transport?.close();
  }
}
